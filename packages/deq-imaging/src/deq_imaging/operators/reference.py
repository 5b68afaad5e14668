"""The numpy operators (N, C, H, W): data generation, classical baselines and the test oracle.

The operator classes are those of :mod:`deq_imaging.operators.linear` (one definition for every backend);
this module holds the Radon transform's numpy sampling kernel (float64 bilinear weights and splatting) and
the seeded float64 ``power_norm``.
"""

from __future__ import annotations

import numpy as np

from deq_imaging.operators.arrays import power_norm  # noqa: F401 (part of this module's interface)
from deq_imaging.operators.linear import CircularBlur, Identity, Inpainting, PaddedBlur, Radon  # noqa: F401
from deq_imaging.operators.radon_geometry import RadonGeometry


def bilinear_corners(rows: np.ndarray, cols: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Flat indices and weights of the 4 bilinear neighbours on an (n, n) grid; outside neighbours weigh 0."""
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    out = []
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        r, c = r0 + dr, c0 + dc
        valid = (r >= 0) & (r < n) & (c >= 0) & (c < n)
        out.append((np.where(valid, r * n + c, 0), np.where(valid, w, 0.0)))
    return out


def _corners(geometry: RadonGeometry, angle: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bilinear neighbours of the sample points of one angle, each (n_s, n_det)."""
    cos, sin = geometry.cos_sin()
    rows, cols = geometry.sample_points(cos[angle : angle + 1], sin[angle : angle + 1])
    return bilinear_corners(rows[0], cols[0], geometry.image_size)


def project(op: Radon, x: np.ndarray) -> np.ndarray:
    """Sinogram: bilinear samples along each ray, summed (in float64)."""
    g = op.geometry
    flat = x.reshape(*x.shape[:2], -1).astype(np.float64)
    out = np.empty((*x.shape[:2], *op.output_shape))
    for a in range(g.n_angles):
        out[..., a] = sum(flat[..., idx] * w for idx, w in _corners(g, a)).sum(axis=-2)
    return out.astype(x.dtype)


def backproject(op: Radon, y: np.ndarray) -> np.ndarray:
    """Back-projection: exact transpose of :func:`project` (bilinear splatting, in float64)."""
    g = op.geometry
    n, d = g.image_size, g.n_det
    flat_y = y.reshape(-1, *op.output_shape).astype(np.float64)
    out = np.zeros((flat_y.shape[0], n * n))
    for a in range(g.n_angles):
        for idx, w in _corners(g, a):
            for b in range(out.shape[0]):
                vals = np.broadcast_to(flat_y[b, None, :, a], (d, d)) * w
                out[b] += np.bincount(idx.ravel(), weights=vals.ravel(), minlength=n * n)
    return out.reshape(*y.shape[:2], n, n).astype(y.dtype)
