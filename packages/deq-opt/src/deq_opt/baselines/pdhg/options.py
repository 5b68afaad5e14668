"""Options of the restarted PDHG solver (shared by the torch and JAX backends)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PDHGOptions"]


@dataclass(frozen=True)
class PDHGOptions:
    """Settings of restarted PDHG (defaults follow PDLP / cuPDLP.jl)."""

    tol: float = 1e-6
    max_iter: int = 100_000
    check_every: int = 64
    ruiz_iters: int = 10
    pock_chambolle_alpha: float | None = 1.0
    step_safety: float = 0.998
    beta_sufficient: float = 0.2
    beta_necessary: float = 0.8
    beta_artificial: float = 0.36
    primal_weight_smoothing: float = 0.5
    infeasibility_tol: float = 1e-8
    progress: bool = False

    def __post_init__(self) -> None:
        """Validate ranges."""
        if not self.tol > 0:
            raise ValueError(f"PDHGOptions.tol must be > 0, got {self.tol}")
        if self.max_iter < 1 or self.check_every < 1:
            raise ValueError("PDHGOptions.max_iter and check_every must be >= 1")
        if self.ruiz_iters < 0:
            raise ValueError(f"PDHGOptions.ruiz_iters must be >= 0, got {self.ruiz_iters}")
        if not 0 < self.step_safety < 1:
            raise ValueError(f"PDHGOptions.step_safety must be in (0, 1), got {self.step_safety}")
        if not 0 <= self.primal_weight_smoothing <= 1:
            raise ValueError("PDHGOptions.primal_weight_smoothing must be in [0, 1]")
