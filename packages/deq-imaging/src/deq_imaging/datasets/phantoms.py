"""Synthetic CT phantoms (numpy float32 in [0, 1], (N, 1, n, n)): Shepp-Logan and seeded random ellipses."""

from __future__ import annotations

import numpy as np
import skimage.data
from skimage.transform import resize


def shepp_logan(size: int) -> np.ndarray:
    """The Shepp-Logan phantom (``skimage.data.shepp_logan_phantom``) resized to (1, 1, size, size)."""
    if size < 8:
        raise ValueError(f"phantom size must be >= 8, got {size}")
    img = resize(skimage.data.shepp_logan_phantom(), (size, size), anti_aliasing=True)
    return np.clip(img, 0, 1).astype(np.float32)[None, None]


def random_ellipses(num: int, size: int, seed: int, max_ellipses: int = 10) -> np.ndarray:
    """``num`` phantoms of random ellipses, zero outside the inscribed circle (for circle=True CT)."""
    if size < 8 or num < 1 or max_ellipses < 1:
        raise ValueError(f"need num >= 1, size >= 8, max_ellipses >= 1; got {num}, {size}, {max_ellipses}")
    rng = np.random.default_rng(seed)
    r = (np.arange(size) - size // 2) / (size // 2)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    out = np.zeros((num, 1, size, size), dtype=np.float32)
    for i in range(num):
        img = np.zeros((size, size))
        for _ in range(int(rng.integers(1, max_ellipses + 1))):
            cy, cx = rng.uniform(-0.5, 0.5, 2)
            ay, ax = rng.uniform(0.05, 0.4, 2)
            phi = rng.uniform(0, np.pi)
            u = ((xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)) / ax
            v = (-(xx - cx) * np.sin(phi) + (yy - cy) * np.cos(phi)) / ay
            img[u**2 + v**2 <= 1] += rng.uniform(0.1, 0.6)
        img[xx**2 + yy**2 > 0.95] = 0.0
        out[i, 0] = np.clip(img, 0, 1)
    return out
