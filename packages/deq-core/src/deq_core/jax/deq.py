"""``DEQ``: an ``eqx.Module`` whose output is the fixed point of a cell ``z = cell(z, x)``."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp

from deq_core import messages
from deq_core.config import SolveOptions, deq_solve_options
from deq_core.jax.solve import solve
from deq_core.solution import Stats


class DEQ(eqx.Module):
    """Deep equilibrium layer: ``DEQ(cell, **solve_options)(x, z0)`` returns ``(z*, stats)``.

    ``cell(z, x)`` is an ``eqx.Module``; ``solve_options`` are those of :func:`deq_core.jax.fixed_point`,
    validated at construction, or ``options`` is a ready :class:`~deq_core.config.SolveOptions` (e.g. from a
    domain's config). ``max_iter`` at call time is the test-time budget; it overrides the training one.
    """

    cell: eqx.Module
    options: SolveOptions = eqx.field(static=True)

    def __init__(self, cell: eqx.Module, options: SolveOptions | None = None, **solve_options):
        self.cell = cell
        self.options = deq_solve_options(options, solve_options)

    def __call__(
        self, x: jax.Array, z0: jax.Array | None = None, *, max_iter: int | None = None
    ) -> tuple[jax.Array, Stats]:
        """Solve for the equilibrium of ``cell(., x)`` from ``z0`` (zeros like ``x`` when omitted)."""
        options = self.options if max_iter is None else dataclasses.replace(self.options, max_iter=max_iter)
        z0 = jnp.zeros_like(x) if z0 is None else z0
        if eqx.is_array(x) and eqx.is_array(z0):
            problem = messages.bad_batch(tuple(z0.shape), tuple(x.shape))
            if problem:
                raise ValueError(problem)
        solution = solve(self.cell, z0, x, options)
        return solution.value, solution.stats
