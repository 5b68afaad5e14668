"""The classical baselines of each task, tuned on the validation pair and timed on the test pair (numpy)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from deq_imaging.baselines import (
    FBP,
    SART,
    BM3DDeblur,
    BM3DDenoiser,
    NLMDenoiser,
    RichardsonLucy,
    TVDenoiser,
    UnsupervisedWienerDeblur,
    WaveletDenoiser,
    WienerDeblur,
)
from deq_imaging.baselines.base import Baseline
from deq_imaging.datasets.problem import Problem
from deq_imaging.evaluation import psnr, ssim


def task_baselines(problem: Problem) -> dict[str, Baseline]:
    """The tuned classical methods compared on ``problem``'s task."""
    spec = problem.spec
    if problem.task == "deblur":
        return {
            "wiener": WienerDeblur(spec.kernel),
            "unsupervised_wiener": UnsupervisedWienerDeblur(spec.kernel),
            "richardson_lucy": RichardsonLucy(spec.kernel, boundary="circular"),
            "bm3d_pnp": BM3DDeblur(spec.kernel, problem.sigma),
        }
    if problem.task == "denoise":
        return {
            "bm3d": BM3DDenoiser(),
            "tv": TVDenoiser(),
            "nlm": NLMDenoiser(),
            "wavelet": WaveletDenoiser(),
        }
    return {"fbp": FBP(spec.image_size, spec.theta), "sart": SART(spec.image_size, spec.theta)}


def run_baselines(
    problem: Problem, smoke: bool = False, bm3d_grid: Sequence[float] = (), bm3d_tune_images: int = 0
) -> dict[str, dict[str, Any]]:
    """Tune each baseline's weight on validation, then reconstruct the test set; per method: mean PSNR
    (``value``), test ``seconds``, ``ssim``, ``weight``, ``tune_seconds`` and the ``output`` images.

    The slow BM3D-based methods tune over ``bm3d_grid`` (default: their own grid) on the first
    ``bm3d_tune_images`` validation images (0: all). ``smoke`` tunes over the middle grid value only and
    skips the BM3D-based methods.
    """
    results = {}
    for name, method in task_baselines(problem).items():
        grid, val_y, val_x = method.grid, problem.val_y, problem.val_x
        if name.startswith("bm3d"):
            if smoke:
                continue
            grid = tuple(bm3d_grid) or grid
            if bm3d_tune_images:
                val_y, val_x = val_y[:bm3d_tune_images], val_x[:bm3d_tune_images]
        if smoke:
            grid = grid[len(grid) // 2 : len(grid) // 2 + 1]
        start = time.perf_counter()
        method.tune(val_y, val_x, grid)
        tuned = time.perf_counter()
        output = np.clip(method(problem.test_y), 0.0, 1.0)
        seconds = time.perf_counter() - tuned
        results[name] = {
            "value": float(np.mean(psnr(output, problem.test_x))),
            "seconds": seconds,
            "ssim": float(np.mean(ssim(output, problem.test_x))),
            "weight": float(method.weight),
            "tune_seconds": tuned - start,
            "output": output,
        }
    return results
