"""Every classical baseline improves PSNR over its degraded input on a small image; tuning picks the best."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import resize

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
from deq_imaging.datasets import shepp_logan, skimage_images
from deq_imaging.evaluation import psnr
from deq_imaging.operators import gaussian_kernel, gaussian_noise, motion_blur_kernel
from deq_imaging.operators import reference as R


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    """The camera image downsized to (1, 1, 48, 48)."""
    cam = skimage_images("gray").subset(["camera"]).images[0][0]
    return resize(cam, (48, 48), anti_aliasing=True).astype(np.float32)[None, None]


@pytest.mark.parametrize("cls", [BM3DDenoiser, TVDenoiser, NLMDenoiser, WaveletDenoiser])
def test_denoisers_improve(clean, cls):
    y = gaussian_noise(clean, 0.1, seed=0)
    assert psnr(cls(0.1)(y), clean)[0] > psnr(y, clean)[0] + 2.0


def test_rgb_bm3d_improves():
    x = skimage_images("rgb").subset(["astronaut"]).center_crops(256)[:, :, ::8, ::8].copy()
    y = gaussian_noise(x, 0.1, seed=0)
    assert psnr(BM3DDenoiser(0.1)(y), x)[0] > psnr(y, x)[0] + 2.0


@pytest.mark.parametrize("cls", [WienerDeblur, UnsupervisedWienerDeblur, BM3DDeblur])
def test_circular_deblurring_improves(clean, cls):
    k = motion_blur_kernel(9, seed=1)
    y = gaussian_noise(R.CircularBlur(k, 48).forward(clean), 0.01, seed=1)
    est = cls(k, 0.01) if cls is BM3DDeblur else cls(k)
    assert psnr(est(y), clean)[0] > psnr(y, clean)[0] + 1.0


def test_richardson_lucy_improves(clean):
    k = gaussian_kernel(7, 1.5)
    y = gaussian_noise(R.PaddedBlur(k, 48, "same").forward(clean), 0.005, seed=1)
    assert psnr(RichardsonLucy(k, 30)(y), clean)[0] > psnr(y, clean)[0] + 1.0


@pytest.mark.parametrize("cls", [FBP, SART])
def test_ct_improves_over_unfiltered_backprojection(cls):
    x = shepp_logan(48)
    theta = np.linspace(0, 180, 40, endpoint=False)
    op = R.Radon(48, theta)
    y = gaussian_noise(op.forward(x), 0.3, seed=2)
    backprojection = op.adjoint(y)
    backprojection *= np.sum(backprojection * x) / np.sum(backprojection**2)  # best-scaled, to be fair
    assert psnr(cls(48, theta)(y), x)[0] > psnr(backprojection, x)[0] + 3.0


def test_tune_picks_grid_maximum(clean):
    y = gaussian_noise(clean, 0.1, seed=3)
    den = TVDenoiser()
    res = den.tune(y, clean, grid=(0.005, 0.05, 0.1, 2.0))
    assert res.best == den.weight == max(res.scores, key=res.scores.get)
    assert res.best in (0.05, 0.1) and res.scores[res.best] > res.scores[0.005]
    with pytest.raises(ValueError, match="expected float observations"):
        den(np.zeros((48, 48)))
    with pytest.raises(ValueError, match=r"expected sinograms of shape \(N, C, 48, 40\)"):
        FBP(48, np.arange(40.0))(np.zeros((1, 1, 48, 41)))
