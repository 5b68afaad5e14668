"""Backend-free empirical Lipschitz estimate of an LP model: perturb A's values, b and c (norm eps)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from deq_core.analysis import summarize_ratios
from deq_opt.operators.lp import LinearProgram

__all__ = ["lipschitz_ratios", "perturb"]

Predict = Callable[[Sequence[LinearProgram]], tuple[np.ndarray, np.ndarray]]


def perturb(lp: LinearProgram, rng: np.random.Generator, eps: float) -> LinearProgram:
    """``lp`` with its non-zeros of A, c and finite row bounds moved along a random direction of norm ``eps``.

    An equality row's two bounds move together (one entry of b); infinite bounds stay infinite.
    """
    eq = lp.row_lo == lp.row_hi
    lo_idx = np.flatnonzero(np.isfinite(lp.row_lo))
    hi_idx = np.flatnonzero(np.isfinite(lp.row_hi) & ~eq)
    sizes = [lp.A.nnz, lp.num_cols, lo_idx.size, hi_idx.size]
    d = rng.standard_normal(sum(sizes))
    d *= eps / np.linalg.norm(d)
    dA, dc, dlo, dhi = np.split(d, np.cumsum(sizes)[:-1])
    A = lp.A.copy()
    A.data = A.data + dA
    row_lo, row_hi = lp.row_lo.copy(), lp.row_hi.copy()
    row_lo[lo_idx] += dlo
    row_hi[eq] = row_lo[eq]
    row_hi[hi_idx] += dhi
    return LinearProgram(
        c=lp.c + dc, A=sp.csr_matrix(A), row_lo=row_lo, row_hi=row_hi, lo=lp.lo, hi=lp.hi, name=lp.name
    )


def lipschitz_ratios(
    predict: Predict, lps: Sequence[LinearProgram], directions: int, eps: float, seed: int
) -> dict[str, float]:
    """Max and mean of ``||(x, y)(lp + d) - (x, y)(lp)|| / eps`` over ``directions`` random ``d`` per LP."""
    rng = np.random.default_rng(seed)
    x0, y0 = predict(lps)
    ratios = np.empty((1, directions, len(lps)))
    for k in range(directions):
        x1, y1 = predict([perturb(lp, rng, eps) for lp in lps])
        diff = np.concatenate([x1 - x0, y1 - y0], axis=1)
        ratios[0, k] = np.linalg.norm(diff, axis=1) / eps
    return summarize_ratios(ratios)
