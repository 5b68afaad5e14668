"""Whole-image benchmark scoring (``evaluation.benchmarks``): fixed-seed noise per image, the same noisy
images for every method, mean PSNR recomputable from the outputs."""

from __future__ import annotations

import numpy as np
import pytest

from deq_imaging.baselines import BM3DDenoiser
from deq_imaging.datasets import ImageSet
from deq_imaging.evaluation import psnr
from deq_imaging.evaluation.benchmarks import compare, noisy_pairs, score
from deq_imaging.operators import gaussian_noise

SIGMA = 25 / 255


@pytest.fixture
def images() -> ImageSet:
    """Three smooth gray images of different sizes."""
    y, x = np.mgrid[0:1:24j, 0:1:20j]
    shapes = [(0.5 + 0.4 * np.sin(3 * x + 2 * y))[None], (0.3 + 0.4 * x * y)[None], (0.2 + 0.6 * y.T)[None]]
    return ImageSet(("a", "b", "c"), tuple(s.astype(np.float32) for s in shapes))


def test_noisy_pairs_draw_image_i_with_seed_plus_i(images):
    pairs = noisy_pairs(images, SIGMA, 7)
    for i, (clean, noisy) in enumerate(pairs):
        assert np.array_equal(clean[0], images.images[i])
        expected = gaussian_noise(clean.astype(np.float64), SIGMA, 7 + i).astype(np.float32)
        assert np.array_equal(noisy, expected)
    assert not np.array_equal(noisy_pairs(images, SIGMA, 8)[0][1], pairs[0][1])


def test_score_is_the_mean_psnr_of_the_clipped_outputs(images):
    pairs = noisy_pairs(images, SIGMA, 0)
    result = score(lambda y: {"noisy": y, "half": y / 2}, pairs, "test")
    noisy = [psnr(np.clip(y, 0, 1), x)[0] for x, y in pairs]
    half = [psnr(np.clip(y / 2, 0, 1), x)[0] for x, y in pairs]
    assert result["psnr"] == pytest.approx({"noisy": np.mean(noisy), "half": np.mean(half)}, abs=1e-9)
    assert result["seconds"] >= 0


def test_compare_gives_bm3d_the_same_noisy_images(images):
    seen = []
    result = compare(lambda y: seen.append(y) or {"model": y}, images, SIGMA, 3, "test")
    pairs = noisy_pairs(images, SIGMA, 3)
    assert all(np.array_equal(a, y) for a, (_, y) in zip(seen, pairs, strict=True))
    assert (result["images"], result["noise_seed"]) == (3, 3)
    bm3d = [psnr(np.clip(BM3DDenoiser(SIGMA)(y), 0, 1), x)[0] for x, y in pairs]
    assert result["BM3D"]["psnr"]["BM3D"] == pytest.approx(np.mean(bm3d), abs=1e-4)  # BM3D: last-bit noise
    assert result["BM3D"]["psnr"]["BM3D"] > result["model"]["psnr"]["model"] + 3  # BM3D does denoise
