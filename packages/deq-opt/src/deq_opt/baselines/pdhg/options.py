"""Options of the restarted PDHG solver (shared by the torch and JAX backends)."""

from __future__ import annotations

from dataclasses import dataclass

from deq_core.errors import ConfigError

__all__ = ["PDHGOptions"]


@dataclass(frozen=True)
class PDHGOptions:
    """Settings of restarted PDHG (defaults follow PDLP / cuPDLP.jl).

    ``step_rule="adaptive"`` is PDLP's adaptive step size (Applegate et al. 2021): a step with size eta is
    accepted when ``eta <= ||dz||_w^2 / (2 |dy^T A dx|)`` and the next trial size is
    ``min((1 - (k+1)^-step_reduction_exponent) * that bound, (1 + (k+1)^-step_growth_exponent) * eta)``;
    ``"constant"`` uses ``step_safety / ||A||_2`` throughout. Iteration counts count accepted steps only;
    rejected trial steps are reported as ``kkt["rejected_steps"]``.
    """

    tol: float = 1e-6
    max_iter: int = 100_000
    check_every: int = 64
    ruiz_iters: int = 5
    pock_chambolle_alpha: float | None = None
    l2_norm_rescaling: bool = True
    step_rule: str = "adaptive"
    step_safety: float = 0.998
    step_reduction_exponent: float = 0.3
    step_growth_exponent: float = 0.6
    beta_sufficient: float = 0.2
    beta_necessary: float = 0.8
    beta_artificial: float = 0.36
    primal_weight_smoothing: float = 0.5
    infeasibility_tol: float = 1e-8
    progress: bool = False

    def __post_init__(self) -> None:
        """Validate ranges (a ConfigError names the field)."""
        if not self.tol > 0:
            raise ConfigError(f"PDHGOptions.tol must be > 0, got {self.tol}")
        if self.max_iter < 1 or self.check_every < 1:
            raise ConfigError("PDHGOptions.max_iter and check_every must be >= 1")
        if self.ruiz_iters < 0:
            raise ConfigError(f"PDHGOptions.ruiz_iters must be >= 0, got {self.ruiz_iters}")
        if not 0 < self.step_safety < 1:
            raise ConfigError(f"PDHGOptions.step_safety must be in (0, 1), got {self.step_safety}")
        if self.step_rule not in ("adaptive", "constant"):
            raise ConfigError(
                f"PDHGOptions.step_rule must be 'adaptive' or 'constant', got {self.step_rule!r}"
            )
        if not (self.step_reduction_exponent > 0 and self.step_growth_exponent > 0):
            raise ConfigError("PDHGOptions.step_reduction_exponent and step_growth_exponent must be > 0")
        if not 0 <= self.primal_weight_smoothing <= 1:
            raise ConfigError("PDHGOptions.primal_weight_smoothing must be in [0, 1]")
