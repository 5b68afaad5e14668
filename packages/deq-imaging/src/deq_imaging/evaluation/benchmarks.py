"""Denoising on whole images of a benchmark set (BSD68, Set12): fixed-seed noise, every method on the same
noisy images, mean PSNR and time; BM3D (told the true noise std) is the classical reference."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from deq_imaging.baselines.denoising import BM3DDenoiser
from deq_imaging.datasets.images import ImageSet
from deq_imaging.evaluation.metrics import psnr
from deq_imaging.operators import gaussian_noise

PUBLISHED_BSD68 = {  # mean PSNR (dB) on BSD68 per noise std (0-255 scale), from ../shared/data/README.md
    15: {"BM3D": 31.07, "WNNM": 31.37, "TNRD": 31.42, "DnCNN": 31.73, "DRUNet": 31.91},
    25: {"BM3D": 28.57, "WNNM": 28.83, "TNRD": 28.92, "DnCNN": 29.23, "DRUNet": 29.48},
    50: {"BM3D": 25.62, "WNNM": 25.87, "TNRD": 25.97, "DnCNN": 26.23, "DRUNet": 26.59},
}
Restore = Callable[[np.ndarray], dict[str, np.ndarray]]  # noisy (1, C, H, W) -> named restorations


def noisy_pairs(images: ImageSet, sigma: float, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(clean, noisy)`` of every image, each (1, C, H, W) float32; image ``i`` gets the Gaussian noise of
    std ``sigma`` drawn with seed ``seed + i``."""
    pairs = []
    for i, image in enumerate(images.images):
        clean = image[None].astype(np.float32)
        pairs.append((clean, gaussian_noise(clean.astype(np.float64), sigma, seed + i).astype(np.float32)))
    return pairs


def score(restore: Restore, pairs: list[tuple[np.ndarray, np.ndarray]], desc: str) -> dict[str, Any]:
    """``{"psnr": {name: mean dB}, "seconds": wall}``: the mean PSNR (outputs clipped to [0, 1]) over
    ``pairs`` of each restoration ``restore`` names, and the wall seconds ``restore`` took on all of them."""
    values: dict[str, list[float]] = {}
    seconds = 0.0
    for clean, noisy in tqdm(pairs, desc=desc, disable=None, leave=False):
        start = time.perf_counter()
        outputs = restore(noisy)
        seconds += time.perf_counter() - start
        for name, output in outputs.items():
            values.setdefault(name, []).append(float(psnr(np.clip(output, 0.0, 1.0), clean)[0]))
    return {"psnr": {name: float(np.mean(v)) for name, v in values.items()}, "seconds": seconds}


def bm3d(sigma: float) -> Restore:
    """BM3D (:class:`~deq_imaging.baselines.BM3DDenoiser`) told the true noise std ``sigma``, as a
    :data:`Restore` naming its output ``BM3D``."""
    denoiser = BM3DDenoiser(sigma)
    return lambda noisy: {"BM3D": denoiser(noisy)}


def compare(restore: Restore, images: ImageSet, sigma: float, seed: int, desc: str) -> dict[str, Any]:
    """``restore`` and BM3D on the same noisy versions of ``images`` (:func:`noisy_pairs` with ``seed``):
    ``{"images": N, "noise_seed": seed, "model": score, "BM3D": score}`` (see :func:`score`)."""
    pairs = noisy_pairs(images, sigma, seed)
    return {
        "images": len(pairs),
        "noise_seed": seed,
        "model": score(restore, pairs, desc),
        "BM3D": score(bm3d(sigma), pairs, f"{desc} BM3D"),
    }
