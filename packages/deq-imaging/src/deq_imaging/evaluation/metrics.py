"""Image-quality metrics per image over a batch: PSNR and SSIM via ``skimage.metrics`` with data_range=1."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def _pair(estimate: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate two (N, C, H, W) arrays of one shape; return them as float64."""
    est, ref = np.asarray(estimate, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if est.ndim != 4 or est.shape != ref.shape:
        raise ValueError(
            f"metrics: expected two arrays of one shape (N, C, H, W), got {est.shape} and {ref.shape}"
        )
    return est, ref


def psnr(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """PSNR in dB of each image, shape (N,), for intensities in [0, 1]."""
    est, ref = _pair(estimate, reference)
    return np.array([peak_signal_noise_ratio(r, e, data_range=1.0) for e, r in zip(est, ref, strict=True)])


def ssim(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """SSIM of each image, shape (N,) (7x7 window, or the largest odd window that fits small images)."""
    est, ref = _pair(estimate, reference)
    win = min(7, *(s - 1 + s % 2 for s in est.shape[2:]))
    if win < 3:
        raise ValueError(f"ssim: images of shape {est.shape[2:]} are too small (need at least 3x3)")
    kw = {"data_range": 1.0, "win_size": win, "channel_axis": 0}
    return np.array([structural_similarity(r, e, **kw) for e, r in zip(est, ref, strict=True)])


def mean_scores(output: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """Mean PSNR and mean SSIM of ``output`` clipped to [0, 1] against ``clean``."""
    output = np.clip(output, 0.0, 1.0)
    return float(np.mean(psnr(output, clean))), float(np.mean(ssim(output, clean)))


def scored(output: np.ndarray, clean: np.ndarray, **fields: object) -> dict:
    """``fields`` plus the ``output`` and its mean ``psnr`` and ``ssim`` against ``clean``."""
    value, similarity = mean_scores(output, clean)
    return {**fields, "psnr": value, "ssim": similarity, "output": output}
