"""Classical denoisers: BM3D, total variation (Chambolle), non-local means, wavelet BayesShrink."""

from __future__ import annotations

import bm3d
import numpy as np
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet, estimate_sigma

from deq_imaging.baselines.base import Baseline

_SIGMAS = (0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)


class BM3DDenoiser(Baseline):
    """BM3D (PyPI ``bm3d``); ``weight`` = the noise std BM3D assumes; colour via ``bm3d_rgb``."""

    grid = _SIGMAS

    def __init__(self, weight: float = 0.1) -> None:
        """BM3D with assumed noise std ``weight`` (intensities in [0, 1])."""
        super().__init__(weight)

    def _restore(self, y: np.ndarray) -> np.ndarray:
        if y.shape[0] == 3:
            return np.moveaxis(bm3d.bm3d_rgb(np.moveaxis(y, 0, 2), self.weight), 2, 0)
        return np.stack([bm3d.bm3d(c, self.weight) for c in y])


class TVDenoiser(Baseline):
    """Total-variation denoising, ``skimage.restoration.denoise_tv_chambolle``; ``weight`` = TV weight."""

    grid = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3)

    def __init__(self, weight: float = 0.1) -> None:
        """TV denoiser with regularisation ``weight``."""
        super().__init__(weight)

    def _restore(self, y: np.ndarray) -> np.ndarray:
        return denoise_tv_chambolle(y, weight=self.weight, channel_axis=0)


class NLMDenoiser(Baseline):
    """Non-local means (``denoise_nl_means``, 5x5 patches, 13x13 search); ``weight`` = filter strength h."""

    grid = (0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.3)

    def __init__(self, weight: float = 0.08) -> None:
        """Non-local means with filtering parameter h = ``weight``; the noise std is estimated per image."""
        super().__init__(weight)

    def _restore(self, y: np.ndarray) -> np.ndarray:
        sigma = float(np.mean(estimate_sigma(y, channel_axis=0)))
        kw = {"h": self.weight, "sigma": sigma, "patch_size": 5, "patch_distance": 6, "fast_mode": True}
        if y.shape[0] == 1:
            return denoise_nl_means(y[0], **kw)[None]
        return denoise_nl_means(y, channel_axis=0, **kw)


class WaveletDenoiser(Baseline):
    """Wavelet soft thresholding with BayesShrink (``denoise_wavelet``, db1); ``weight`` = noise std used."""

    grid = _SIGMAS

    def __init__(self, weight: float = 0.1) -> None:
        """Wavelet BayesShrink with noise std ``weight``."""
        super().__init__(weight)

    def _restore(self, y: np.ndarray) -> np.ndarray:
        return denoise_wavelet(y, sigma=self.weight, method="BayesShrink", mode="soft", channel_axis=0)
