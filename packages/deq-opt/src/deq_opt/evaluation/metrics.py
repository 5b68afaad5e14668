"""Backend-free quality of predicted LP solutions: errors, objective gap, primal/dual infeasibility."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deq_opt.operators.lp import LinearProgram

__all__ = ["dual_infeasibility", "primal_infeasibility", "solution_metrics"]


def _fin(v: np.ndarray) -> np.ndarray:
    """``v`` with infinite entries replaced by 0."""
    return np.where(np.isfinite(v), v, 0.0)


def primal_infeasibility(lp: LinearProgram, x: np.ndarray) -> float:
    """``||row and bound violation of x|| / (1 + ||b||)`` with ``b`` the finite row bounds."""
    ax = lp.A @ x
    viol = np.concatenate([ax - np.clip(ax, lp.row_lo, lp.row_hi), x - np.clip(x, lp.lo, lp.hi)])
    b = np.maximum(np.abs(_fin(lp.row_lo)), np.abs(_fin(lp.row_hi)))
    return float(np.linalg.norm(viol) / (1.0 + np.linalg.norm(b)))


def dual_infeasibility(lp: LinearProgram, y: np.ndarray) -> float:
    """``||reduced-cost and dual sign violations|| / (1 + ||c||)`` (reduced costs ``c - A^T y``)."""
    g = lp.c - lp.A.T @ y
    has_lo, has_hi = np.isfinite(lp.lo), np.isfinite(lp.hi)
    dres = np.where(has_lo, 0.0, np.maximum(g, 0.0)) + np.where(has_hi, 0.0, np.minimum(g, 0.0))
    rlo, rhi = np.isfinite(lp.row_lo), np.isfinite(lp.row_hi)
    sign = np.where(rlo, 0.0, np.maximum(y, 0.0)) + np.where(rhi, 0.0, np.minimum(y, 0.0))
    return float(np.linalg.norm(np.concatenate([dres, sign])) / (1.0 + np.linalg.norm(lp.c)))


def solution_metrics(
    lps: Sequence[LinearProgram], x: np.ndarray, y: np.ndarray, x_star: np.ndarray, y_star: np.ndarray
) -> dict[str, float]:
    """Means over instances of the relative primal/dual errors ``||v - v*|| / (||v*|| + 1)``, the relative
    objective gap ``|c.x - c.x*| / (1 + |c.x*|)`` and the primal and dual infeasibilities."""
    rows = []
    for k, lp in enumerate(lps):
        obj, obj_star = lp.objective(x[k]), lp.objective(x_star[k])
        rows.append(
            [
                np.linalg.norm(x[k] - x_star[k]) / (np.linalg.norm(x_star[k]) + 1.0),
                np.linalg.norm(y[k] - y_star[k]) / (np.linalg.norm(y_star[k]) + 1.0),
                abs(obj - obj_star) / (1.0 + abs(obj_star)),
                primal_infeasibility(lp, x[k]),
                dual_infeasibility(lp, y[k]),
            ]
        )
    mean = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    keys = ("primal_error", "dual_error", "objective_gap", "primal_infeasibility", "dual_infeasibility")
    return {key: float(v) for key, v in zip(keys, mean, strict=True)}
