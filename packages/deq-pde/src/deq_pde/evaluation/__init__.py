"""Evaluation: error metrics for PDE solutions."""

from deq_pde.evaluation.metrics import error_norms, relative_l2_fem, relative_l2_grid

__all__ = ["error_norms", "relative_l2_fem", "relative_l2_grid"]
