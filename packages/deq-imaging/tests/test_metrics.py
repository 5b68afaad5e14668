"""PSNR and SSIM per image."""

from __future__ import annotations

import numpy as np
import pytest

from deq_imaging.evaluation import psnr, ssim


def test_psnr_per_image_matches_formula():
    ref = np.zeros((2, 1, 8, 8))
    est = ref.copy()
    est[0] += 0.1
    est[1] += 0.01
    np.testing.assert_allclose(psnr(est, ref), [20.0, 40.0])


def test_ssim_batched_and_small_images():
    rng = np.random.default_rng(0)
    ref = rng.random((3, 3, 16, 16))
    s = ssim(ref, ref)
    assert s.shape == (3,) and np.allclose(s, 1.0)
    assert np.all(ssim(ref + 0.2 * rng.standard_normal(ref.shape), ref) < 0.9)
    assert ssim(rng.random((1, 1, 5, 6)), rng.random((1, 1, 5, 6))).shape == (1,)
    with pytest.raises(ValueError, match="one shape"):
        psnr(ref, ref[:, :1])
