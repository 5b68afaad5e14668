"""Inpainting masks (numpy): seeded random-pixel masks and box masks, float64 arrays of 0/1, shape (H, W)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deq_imaging.operators.shapes import pair


def random_pixel_mask(shape: int | Sequence[int], keep: float, seed: int) -> np.ndarray:
    """Mask of shape (H, W) keeping each pixel independently with probability ``keep`` (seeded)."""
    h, w = pair(shape, "random_pixel_mask shape")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep fraction must be in (0, 1], got {keep}")
    rng = np.random.default_rng(seed)
    return (rng.random((h, w)) < keep).astype(np.float64)


def box_mask(
    shape: int | Sequence[int], box_size: int | Sequence[int], num_boxes: int = 1, seed: int | None = None
) -> np.ndarray:
    """Mask of shape (H, W) with ``num_boxes`` boxes of ``box_size`` set to 0 (centred if no seed)."""
    h, w = pair(shape, "box_mask shape")
    bh, bw = pair(box_size, "box_mask box_size")
    if bh > h or bw > w:
        raise ValueError(f"box {bh}x{bw} does not fit an image of shape ({h}, {w})")
    mask = np.ones((h, w), dtype=np.float64)
    if seed is None:
        if num_boxes != 1:
            raise ValueError("box_mask: several boxes need a seed for their positions")
        top, left = (h - bh) // 2, (w - bw) // 2
        mask[top : top + bh, left : left + bw] = 0.0
        return mask
    rng = np.random.default_rng(seed)
    for _ in range(num_boxes):
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        mask[top : top + bh, left : left + bw] = 0.0
    return mask


def check_mask(mask: np.ndarray) -> np.ndarray:
    """Validate an inpainting mask of shape (H, W) or (C, H, W) with values in [0, 1]; return float64."""
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim not in (2, 3):
        raise ValueError(f"inpainting mask: expected shape (H, W) or (C, H, W), got {m.shape}")
    if m.size == 0 or not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
        raise ValueError("inpainting mask: values must be finite and lie in [0, 1] (1 observed, 0 missing)")
    return m
