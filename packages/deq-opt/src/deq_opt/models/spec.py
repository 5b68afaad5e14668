"""Backend-free model hyper-parameters and parameter-count arithmetic shared by the torch and JAX models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deq_core import Phantom, Picard
from deq_opt.models.graphs import CON_FEATURES, VAR_FEATURES

__all__ = ["ModelSpec", "explicit_params", "explicit_width", "gnn_params"]


@dataclass(frozen=True)
class ModelSpec:
    """Widths, contraction factor, explicit depth and the DEQ solve options of the LP models."""

    hidden: int = 48
    pdhg_hidden: int = 32
    gamma: float = 0.99
    explicit_layers: int = 4
    train_iter: int = 16
    tol: float = 1e-4
    pdhg_damping: float = 0.5

    def __post_init__(self) -> None:
        """Validate ranges."""
        if not 0 < self.gamma < 1:
            raise ValueError(f"ModelSpec.gamma must be in (0, 1) for a contraction, got {self.gamma}")
        if min(self.hidden, self.pdhg_hidden, self.explicit_layers, self.train_iter) < 1:
            raise ValueError("ModelSpec widths, explicit_layers and train_iter must be >= 1")
        if not 0 < self.pdhg_damping <= 1:
            raise ValueError(f"ModelSpec.pdhg_damping must be in (0, 1], got {self.pdhg_damping}")

    def solve_options(self, kind: str) -> dict[str, Any]:
        """deq-core options: DEQ-GNN (Picard, implicit gradient); learned PDHG (damped Picard, phantom)."""
        gnn = kind == "gnn"
        return {
            "solver": Picard(damping=1.0 if gnn else self.pdhg_damping),
            "backward": "implicit" if gnn else Phantom(steps=5, tau=0.5),
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
    return _encoders_and_heads(d) + 2 * d * d + d


def explicit_params(d: int, layers: int) -> int:
    """Parameter count of the explicit GNN with ``layers`` untied blocks at width ``d``."""
    return _encoders_and_heads(d) + layers * (2 * d * d + d)


def explicit_width(target: int, layers: int) -> int:
    """The width whose explicit GNN has the parameter count closest to ``target``."""
    return min(range(1, 1024), key=lambda d: abs(explicit_params(d, layers) - target))
