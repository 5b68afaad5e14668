"""Blur kernels, masks and the numpy reference operators against scipy / skimage."""

from __future__ import annotations

import numpy as np
import pytest
from imaging_checks import check_adjoint, random_pair, reference_op
from scipy.signal import convolve

from deq_imaging.operators import (
    box_mask,
    gaussian_kernel,
    motion_blur_kernel,
    motion_trajectory,
    random_pixel_mask,
)
from deq_imaging.operators import reference as R


def test_gaussian_kernel_normalised_symmetric():
    k = gaussian_kernel(9, 1.6)
    assert k.shape == (9, 9) and k.sum() == pytest.approx(1.0, abs=1e-12) and k.min() > 0
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    assert np.unravel_index(k.argmax(), k.shape) == (4, 4)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(5, 0.0)


def test_motion_kernel_normalised_seeded_and_varied():
    a, b, c = motion_blur_kernel(17, seed=5), motion_blur_kernel(17, seed=5), motion_blur_kernel(17, seed=6)
    assert a.shape == (17, 17) and a.sum() == pytest.approx(1.0, abs=1e-12) and a.min() >= 0
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert (a > 0).sum() > 17  # a path, not a dot
    rows, cols = np.nonzero(a)
    assert max(np.ptp(rows), np.ptp(cols)) >= 15  # the trajectory spans extent = size - 2 pixels
    traj = motion_trajectory(seed=1, max_length=10.0)
    assert np.sum(np.abs(np.diff(traj))) == pytest.approx(10.0, rel=1e-9)
    with pytest.raises(ValueError, match="extent"):
        motion_blur_kernel(9, seed=0, extent=20)
    assert motion_blur_kernel(16, seed=2).shape == (16, 16)


def test_masks():
    m = random_pixel_mask((64, 64), 0.3, seed=1)
    assert set(np.unique(m)) <= {0.0, 1.0} and m.mean() == pytest.approx(0.3, abs=0.03)
    assert np.array_equal(m, random_pixel_mask((64, 64), 0.3, seed=1))
    b = box_mask((10, 12), (4, 6))
    assert b.sum() == 120 - 24 and b[5, 6] == 0 and b[0, 0] == 1
    with pytest.raises(ValueError, match="does not fit"):
        box_mask((10, 12), 11)


def test_reference_adjoints(operator_case):
    _, cls, args, ch = operator_case
    op = reference_op(cls, args)
    x, y = random_pair(op, ch, seed=0)
    check_adjoint(op.forward, op.adjoint, x, y, 1e-12)


@pytest.mark.parametrize("boundary", ["valid", "same"])
def test_padded_blur_matches_scipy(boundary):
    k = motion_blur_kernel(7, seed=0)
    x = np.random.default_rng(0).random((15, 13))
    ours = R.PaddedBlur(k, (15, 13), boundary).forward(x[None, None])[0, 0]
    np.testing.assert_allclose(ours, convolve(x, k, boundary), atol=1e-12)


def test_circular_blur_matches_wrapped_convolution():
    k = gaussian_kernel(5, 1.0)
    x = np.random.default_rng(0).random((12, 12))
    wrapped = convolve(np.pad(x, 2, mode="wrap"), k, "valid")
    np.testing.assert_allclose(R.CircularBlur(k, 12).forward(x[None, None])[0, 0], wrapped, atol=1e-12)
