"""``DEQ``: an ``nn.Module`` whose output is the fixed point of a cell ``z = cell(z, x)``."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from deq_core import messages
from deq_core.config import SolveOptions, deq_solve_options
from deq_core.solution import Stats
from deq_core.torch.solve import solve


class DEQ(nn.Module):
    """Deep equilibrium layer: ``forward(x, z0)`` returns ``(z*, stats)`` with ``z* = cell(z*, x)``.

    ``solve_options`` are those of :func:`deq_core.torch.fixed_point` (validated here, at construction), or
    ``options`` is a ready :class:`~deq_core.config.SolveOptions` (e.g. from a domain's config).
    ``max_iter`` given at call time is the test-time compute budget and overrides the training one.
    When ``x`` is a tensor whose rows are the samples, the cell is evaluated only on samples that have not
    converged yet (with the matching rows of ``x``): it must treat samples independently.
    """

    def __init__(self, cell: nn.Module, options: SolveOptions | None = None, **solve_options):
        super().__init__()
        self.cell = cell
        self.options = deq_solve_options(options, solve_options)

    def forward(
        self, x: torch.Tensor, z0: torch.Tensor | None = None, *, max_iter: int | None = None
    ) -> tuple[torch.Tensor, Stats]:
        """Solve for the equilibrium of ``cell(., x)`` from ``z0`` (zeros like ``x`` when omitted)."""
        options = self.options if max_iter is None else dataclasses.replace(self.options, max_iter=max_iter)
        z0 = torch.zeros_like(x) if z0 is None else z0
        if isinstance(x, torch.Tensor) and isinstance(z0, torch.Tensor):
            problem = messages.bad_batch(tuple(z0.shape), tuple(x.shape))
            if problem:
                raise ValueError(problem)
        per_sample = isinstance(x, torch.Tensor) and x.ndim > 0 and x.shape[0] == z0.shape[0]
        solution = solve(self.cell, z0, x, options, per_sample_args=per_sample)
        return solution.value, solution.stats

    def extra_repr(self) -> str:
        """Show the solve options in the module's repr."""
        o = self.options
        return f"solver={o.solver}, backward={o.backward}, stop={o.stop}, max_iter={o.max_iter}"
