"""Backend-free PDHG preprocessing in numpy: Ruiz + Pock–Chambolle scaling, step size, norms, unscaling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.operators.lp import LinearProgram

__all__ = ["ScaledLP", "prepare", "spectral_norm"]


@dataclass(frozen=True)
class ScaledLP:
    """The diagonally rescaled LP ``A~ = diag(r) A diag(s)`` plus everything the iteration needs.

    Original variables are ``x = s * x~`` and duals ``y = r * y~``. Infinite bounds stay infinite; the
    ``*_fin`` vectors replace them by 0 for dual-objective sums.
    """

    A: sp.csr_matrix
    AT: sp.csr_matrix
    c: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray
    r: np.ndarray
    s: np.ndarray
    step: float
    primal_weight: float
    orig_c: np.ndarray
    orig_lo_fin: np.ndarray
    orig_hi_fin: np.ndarray
    orig_row_lo_fin: np.ndarray
    orig_row_hi_fin: np.ndarray
    lo_free: np.ndarray
    hi_free: np.ndarray
    row_lo_free: np.ndarray
    row_hi_free: np.ndarray
    obj_const: float
    b_norm: float
    c_norm: float


def _abs_max(A: sp.csr_matrix, axis: int) -> np.ndarray:
    """Max absolute entry per row (axis=1) or column (axis=0)."""
    return np.asarray(abs(A).max(axis=axis).todense()).ravel()


def spectral_norm(A: sp.spmatrix, iters: int = 200, seed: int = 0) -> float:
    """Largest singular value of ``A`` by power iteration on ``A^T A`` (a tight estimate from below)."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(A.shape[1])
    v /= np.linalg.norm(v)
    sigma = 0.0
    AT = A.T.tocsr()
    for _ in range(iters):
        w = AT @ (A @ v)
        nrm = np.linalg.norm(w)
        if nrm == 0:
            return 0.0
        new = float(np.sqrt(nrm))
        v = w / nrm
        if abs(new - sigma) <= 1e-6 * new:
            sigma = new
            break
        sigma = new
    return sigma


def prepare(lp: LinearProgram, options: PDHGOptions) -> ScaledLP:
    """Rescale ``lp`` (Ruiz, then Pock–Chambolle and/or l2-norm rescaling); derive first step and norms."""
    A = lp.A.copy()
    m, n = A.shape
    r, s = np.ones(m), np.ones(n)
    for _ in range(options.ruiz_iters):
        rows, cols = _abs_max(A, 1), _abs_max(A, 0)
        dr = np.where(rows > 0, 1.0 / np.sqrt(np.where(rows > 0, rows, 1.0)), 1.0)
        dc = np.where(cols > 0, 1.0 / np.sqrt(np.where(cols > 0, cols, 1.0)), 1.0)
        A = sp.diags(dr) @ A @ sp.diags(dc)
        r, s = r * dr, s * dc
    alpha = options.pock_chambolle_alpha
    if alpha is not None:
        absA = abs(A)
        rows = np.asarray(absA.power(alpha).sum(axis=1)).ravel()
        cols = np.asarray(absA.power(2.0 - alpha).sum(axis=0)).ravel()
        dr = np.where(rows > 0, 1.0 / np.sqrt(np.where(rows > 0, rows, 1.0)), 1.0)
        dc = np.where(cols > 0, 1.0 / np.sqrt(np.where(cols > 0, cols, 1.0)), 1.0)
        A = sp.diags(dr) @ A @ sp.diags(dc)
        r, s = r * dr, s * dc
    if options.l2_norm_rescaling:
        rows = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
        cols = np.sqrt(np.asarray(A.multiply(A).sum(axis=0)).ravel())
        dr = np.where(rows > 0, 1.0 / np.sqrt(np.where(rows > 0, rows, 1.0)), 1.0)
        dc = np.where(cols > 0, 1.0 / np.sqrt(np.where(cols > 0, cols, 1.0)), 1.0)
        A = sp.diags(dr) @ A @ sp.diags(dc)
        r, s = r * dr, s * dc
    A = sp.csr_matrix(A)
    A.sort_indices()
    AT = A.T.tocsr()
    AT.sort_indices()
    c = lp.c * s
    row_lo, row_hi = lp.row_lo * r, lp.row_hi * r
    if options.step_rule == "adaptive":  # PDLP's first trial step 1 / ||A||_max; the rule adapts it
        a_max = float(np.abs(A.data).max()) if A.nnz else 0.0
        step = 1.0 / a_max if a_max > 0 else 1.0
    else:
        sigma = spectral_norm(A)
        step = options.step_safety / sigma if sigma > 0 else 1.0
    c_norm_scaled = float(np.linalg.norm(c))
    b_scaled = np.maximum(
        np.abs(np.where(np.isfinite(row_lo), row_lo, 0)), np.abs(np.where(np.isfinite(row_hi), row_hi, 0))
    )
    b_norm_scaled = float(np.linalg.norm(b_scaled))
    weight = c_norm_scaled / b_norm_scaled if c_norm_scaled > 0 and b_norm_scaled > 0 else 1.0
    fin = lambda v: np.where(np.isfinite(v), v, 0.0)  # noqa: E731
    b_orig = np.maximum(np.abs(fin(lp.row_lo)), np.abs(fin(lp.row_hi)))
    return ScaledLP(
        A=A,
        AT=AT,
        c=c,
        lo=lp.lo / s,
        hi=lp.hi / s,
        row_lo=row_lo,
        row_hi=row_hi,
        r=r,
        s=s,
        step=step,
        primal_weight=weight,
        orig_c=lp.c.copy(),
        orig_lo_fin=fin(lp.lo),
        orig_hi_fin=fin(lp.hi),
        orig_row_lo_fin=fin(lp.row_lo),
        orig_row_hi_fin=fin(lp.row_hi),
        lo_free=~np.isfinite(lp.lo),
        hi_free=~np.isfinite(lp.hi),
        row_lo_free=~np.isfinite(lp.row_lo),
        row_hi_free=~np.isfinite(lp.row_hi),
        obj_const=lp.obj_const,
        b_norm=float(np.linalg.norm(b_orig)),
        c_norm=float(np.linalg.norm(lp.c)),
    )
