"""The common result record of every LP solver in deq-opt."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LPResult", "STATUSES"]

STATUSES = (
    "optimal",
    "infeasible",
    "unbounded",
    "infeasible_or_unbounded",
    "iteration_limit",
    "time_limit",
    "error",
)


@dataclass
class LPResult:
    """Outcome of an LP solve: status, minimisation objective, primal x, dual y and effort spent.

    Duals follow the convention ``reduced costs = c - A^T y``; ``y_i > 0`` prices an active lower row bound.
    ``seconds`` is solve time; ``compile_seconds`` is compilation done ahead of it (JAX's jit; ~0 for eager
    solvers), reported apart so that a first call's timing is not its compile time.
    """

    status: str
    objective: float
    x: np.ndarray
    y: np.ndarray
    iterations: int
    seconds: float
    solver: str
    kkt: dict[str, float] = field(default_factory=dict)
    compile_seconds: float = 0.0

    def __post_init__(self) -> None:
        """Check the status is a known one."""
        if self.status not in STATUSES:
            raise ValueError(f"LPResult.status must be one of {STATUSES}, got {self.status!r}")
