"""Backend-free model inputs: LPs as padded bipartite variable-constraint graphs, target scaling, decoding.

Every instance of a task has the same ``m`` rows and ``n`` columns; edges (the non-zeros of ``A``) are padded
to a common count with zero values. ``A`` enters as ``A / ||A||_2`` (per instance), so a message-passing step
``h_c <- A^ h_v`` has operator norm at most 1 — the basis of the contractive DEQ-GNN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deq_opt.baselines.pdhg.scaling import spectral_norm
from deq_opt.operators.lp import LinearProgram

__all__ = ["VAR_FEATURES", "CON_FEATURES", "GraphBatch", "Scales", "decode", "featurize", "fit_scales"]

VAR_FEATURES = 5
CON_FEATURES = 5
Convert = Callable[[np.ndarray], Any]  # numpy -> a backend's array


@dataclass(frozen=True)
class Scales:
    """Task-wide normalisers (root-mean-square over the training set) of c, row bounds, x* and y*."""

    c: float
    b: float
    x: float
    y: float


@dataclass(frozen=True)
class GraphBatch:
    """A batch of same-size LPs as arrays: node features, padded edges (local indices) and edge values."""

    var: np.ndarray  # (B, n, VAR_FEATURES)
    con: np.ndarray  # (B, m, CON_FEATURES)
    bounds: np.ndarray  # (B, m, 2) row bounds / (||A||_2 x-scale): the units of A^ x / x-scale (inf -> 0)
    rows: np.ndarray  # (B, E) int32, constraint index of each edge
    cols: np.ndarray  # (B, E) int32, variable index of each edge
    vals: np.ndarray  # (B, E) float32, A_ij / ||A||_2 (0 on padding)

    @property
    def size(self) -> int:
        """Number of instances."""
        return self.var.shape[0]

    def take(self, index: np.ndarray | slice) -> GraphBatch:
        """The sub-batch ``index``."""
        return GraphBatch(
            self.var[index],
            self.con[index],
            self.bounds[index],
            self.rows[index],
            self.cols[index],
            self.vals[index],
        )

    def arrays(self, values: Convert, indices: Convert) -> dict[str, Any]:
        """The batch as a backend's arrays: ``values`` converts features and values, ``indices`` the edges."""
        return {
            "var": values(self.var),
            "con": values(self.con),
            "bounds": values(self.bounds),
            "rows": indices(self.rows),
            "cols": indices(self.cols),
            "vals": values(self.vals),
        }

    def chunks(self, size: int, pad: bool = False) -> Iterator[tuple[GraphBatch, int]]:
        """Consecutive sub-batches of ``size`` instances and how many of each are real.

        With ``pad`` the last one is filled up to ``size`` by repeating instance 0 (one shape to compile).
        """
        for lo in range(0, self.size, size):
            index = np.arange(lo, min(lo + size, self.size))
            valid = len(index)
            if pad:
                index = np.concatenate([index, np.zeros(size - valid, dtype=index.dtype)])
            yield self.take(index), valid


def _rms(values: np.ndarray) -> float:
    """Root mean square, 1 when empty or zero."""
    values = values[np.isfinite(values)]
    r = float(np.sqrt(np.mean(values**2))) if values.size else 0.0
    return r if r > 0 else 1.0


def fit_scales(lps: Sequence[LinearProgram], x: np.ndarray, y: np.ndarray) -> Scales:
    """Scales from training LPs and their optimal primal ``x`` (B, n) and dual ``y`` (B, m) solutions."""
    c = np.concatenate([lp.c for lp in lps])
    b = np.concatenate([np.concatenate([lp.row_lo, lp.row_hi]) for lp in lps])
    return Scales(c=_rms(c), b=_rms(b), x=_rms(np.asarray(x)), y=_rms(np.asarray(y)))


def _bounds(lo: np.ndarray, hi: np.ndarray, scale: float) -> list[np.ndarray]:
    """[lo/scale, has_lo, hi/scale, has_hi] with infinite bounds as value 0 and flag 0."""
    has_lo, has_hi = np.isfinite(lo), np.isfinite(hi)
    return [
        np.where(has_lo, lo, 0.0) / scale,
        has_lo.astype(float),
        np.where(has_hi, hi, 0.0) / scale,
        has_hi.astype(float),
    ]


def featurize(lps: Sequence[LinearProgram], scales: Scales, edges: int | None = None) -> GraphBatch:
    """Stack same-size LPs into a :class:`GraphBatch` (edges padded to ``edges``, default the largest nnz)."""
    if not lps:
        raise ValueError("featurize: no LPs given")
    m, n = lps[0].shape
    for k, lp in enumerate(lps):
        if lp.shape != (m, n):
            raise ValueError(f"featurize: LP {k} ({lp.name}) has shape {lp.shape}, expected {(m, n)}")
    nnz = max(lp.A.nnz for lp in lps)
    edges = nnz if edges is None else edges
    if edges < nnz:
        raise ValueError(f"featurize: edges={edges} is below the largest non-zero count {nnz}")
    B = len(lps)
    var = np.empty((B, n, VAR_FEATURES), np.float32)
    con = np.empty((B, m, CON_FEATURES), np.float32)
    bounds = np.empty((B, m, 2), np.float32)
    rows = np.zeros((B, edges), np.int32)
    cols = np.zeros((B, edges), np.int32)
    vals = np.zeros((B, edges), np.float32)
    for k, lp in enumerate(lps):
        var[k] = np.stack([lp.c / scales.c, *_bounds(lp.lo, lp.hi, scales.x)], axis=1)
        eq = (lp.row_lo == lp.row_hi).astype(float)
        con[k] = np.stack([*_bounds(lp.row_lo, lp.row_hi, scales.b), eq], axis=1)
        coo = lp.A.tocoo()
        norm = spectral_norm(lp.A, iters=50) or 1.0
        rows[k, : coo.nnz], cols[k, : coo.nnz], vals[k, : coo.nnz] = coo.row, coo.col, coo.data / norm
        unit = norm * scales.x
        bounds[k, :, 0] = np.where(np.isfinite(lp.row_lo), lp.row_lo, 0.0) / unit
        bounds[k, :, 1] = np.where(np.isfinite(lp.row_hi), lp.row_hi, 0.0) / unit
    return GraphBatch(var, con, bounds, rows, cols, vals)


def decode(
    lps: Sequence[LinearProgram], x_scaled: np.ndarray, y_scaled: np.ndarray, scales: Scales
) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs to solutions: ``x`` clipped to its bounds, ``y`` projected onto the dual sign cone."""
    x = np.asarray(x_scaled, np.float64) * scales.x
    y = np.asarray(y_scaled, np.float64) * scales.y
    out_x, out_y = np.empty_like(x), np.empty_like(y)
    for k, lp in enumerate(lps):
        out_x[k] = np.clip(x[k], lp.lo, lp.hi)
        has_lo, has_hi = np.isfinite(lp.row_lo), np.isfinite(lp.row_hi)
        out_y[k] = np.where(has_lo, y[k], np.minimum(y[k], 0.0))
        out_y[k] = np.where(has_hi, out_y[k], np.maximum(out_y[k], 0.0))
    return out_x, out_y
