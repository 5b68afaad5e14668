"""Backend-free model hyper-parameters and parameter-count arithmetic shared by the torch and JAX models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deq_core import Phantom, Picard
from deq_opt.models.graphs import CON_FEATURES, VAR_FEATURES

__all__ = ["ModelSpec", "explicit_params", "gnn_params", "matching_width", "pdhg_params"]


@dataclass(frozen=True)
class ModelSpec:
    """Width of the learned PDHG (the reported implicit model), contraction factor, explicit depth, solves.

    The DEQ-GNN's and the explicit GNN's widths are chosen to match the learned PDHG's parameter count.
    """

    hidden: int = 41
    gamma: float = 0.99
    explicit_layers: int = 4
    train_iter: int = 16
    tol: float = 1e-4
    pdhg_damping: float = 0.5

    def __post_init__(self) -> None:
        """Validate ranges."""
        if not 0 < self.gamma < 1:
            raise ValueError(f"ModelSpec.gamma must be in (0, 1) for a contraction, got {self.gamma}")
        if min(self.hidden, self.explicit_layers, self.train_iter) < 1:
            raise ValueError("ModelSpec hidden, explicit_layers and train_iter must be >= 1")
        if not 0 < self.pdhg_damping <= 1:
            raise ValueError(f"ModelSpec.pdhg_damping must be in (0, 1], got {self.pdhg_damping}")

    @property
    def gnn_width(self) -> int:
        """The DEQ-GNN width whose parameter count is closest to the learned PDHG's."""
        return matching_width(gnn_params, pdhg_params(self.hidden))

    @property
    def explicit_width(self) -> int:
        """The explicit GNN width whose parameter count is closest to the learned PDHG's."""
        return matching_width(lambda d: explicit_params(d, self.explicit_layers), pdhg_params(self.hidden))

    def solve_options(self, kind: str) -> dict[str, Any]:
        """deq-core options: DEQ-GNN (Picard), learned PDHG (damped Picard); both phantom gradients."""
        return {
            "solver": Picard(damping=1.0 if kind == "gnn" else self.pdhg_damping),
            "backward": Phantom(steps=5, tau=0.5),
            "tol": self.tol,
            "max_iter": self.train_iter,
        }


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
