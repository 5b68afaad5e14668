"""Backend-free model hyper-parameters and parameter-count arithmetic shared by the torch and JAX models.

The implicit models' solver options are one :class:`deq_core.config.SolveOptions`, validated by deq-core
when it is built (:func:`deq_solve`); every mistake in these settings is a
:class:`deq_core.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from deq_core.config import Phantom, Picard, SolveOptions, solve_options
from deq_core.errors import ConfigError
from deq_opt.models.graphs import CON_FEATURES, VAR_FEATURES

__all__ = ["ModelSpec", "deq_solve", "explicit_params", "gnn_params", "matching_width", "pdhg_params"]


def deq_solve(train_iter: int = 16, tol: float = 1e-4, damping: float = 0.5) -> SolveOptions:
    """The learned PDHG's solve: up to ``train_iter`` damped Picard steps to ``tol``; phantom gradient."""
    return solve_options(Picard(damping=damping), Phantom(steps=5, tau=0.5), tol=tol, max_iter=train_iter)


@dataclass(frozen=True)
class ModelSpec:
    """Width of the learned PDHG (the reported implicit model), contraction factor, explicit depth, solves.

    The DEQ-GNN's and the explicit GNN's widths are chosen to match the learned PDHG's parameter count.
    """

    hidden: int = 41
    gamma: float = 0.99
    explicit_layers: int = 4
    solve: SolveOptions = field(default_factory=deq_solve)

    def __post_init__(self) -> None:
        """Validate ranges."""
        for name in ("hidden", "explicit_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ModelSpec.{name} must be an integer >= 1, got {value!r}")
        if not 0 < self.gamma < 1:
            raise ConfigError(f"ModelSpec.gamma must be in (0, 1) for a contraction, got {self.gamma}")
        if not isinstance(self.solve, SolveOptions):
            raise ConfigError(f"ModelSpec.solve must be a SolveOptions, got {type(self.solve).__name__}")

    @property
    def gnn_width(self) -> int:
        """The DEQ-GNN width whose parameter count is closest to the learned PDHG's."""
        return matching_width(gnn_params, pdhg_params(self.hidden))

    @property
    def explicit_width(self) -> int:
        """The explicit GNN width whose parameter count is closest to the learned PDHG's."""
        return matching_width(lambda d: explicit_params(d, self.explicit_layers), pdhg_params(self.hidden))

    def solve_options(self, kind: str) -> SolveOptions:
        """The solve of the learned PDHG (``kind="pdhg"``) or of the DEQ-GNN (the same, undamped Picard)."""
        return self.solve if kind == "pdhg" else dataclasses.replace(self.solve, solver=Picard(damping=1.0))


def _encoders_and_heads(d: int) -> int:
    """Parameters of the two node encoders and the two readout heads at width ``d``."""
    encoders = (VAR_FEATURES + CON_FEATURES) * d + 2 * d + 2 * (d * d + d)
    heads = (d + 1) + (d * d + d) + (d + 1)
    return encoders + heads


def gnn_params(d: int) -> int:
    """Parameter count of the DEQ-GNN at width ``d``."""
    return _encoders_and_heads(d) + 2 * d * d + 3 * d + 2


def explicit_params(d: int, layers: int) -> int:
    """Parameter count of the explicit GNN with ``layers`` untied blocks at width ``d``."""
    return _encoders_and_heads(d) + layers * (2 * d * d + d)


def pdhg_params(d: int) -> int:
    """Parameter count of the learned PDHG at width ``d``."""
    return _encoders_and_heads(d) + 4 * d * d


def matching_width(count: Callable[[int], int], target: int) -> int:
    """The width ``d`` whose ``count(d)`` is closest to ``target``."""
    return min(range(1, 1024), key=lambda d: abs(count(d) - target))
