"""Bad operator inputs are refused by name: proximal weights, inpainting masks, Radon and image sizes; the
inpainting step is exact for fractional masks too; kernel sizes are integers."""

from __future__ import annotations

import numpy as np
import pytest

from deq_imaging.operators import gaussian_kernel, motion_blur_kernel, motion_trajectory, random_pixel_mask
from deq_imaging.operators import linear as L
from deq_imaging.operators.radon_geometry import RadonGeometry
from deq_imaging.operators.shapes import pair

PROX_OPERATORS = {
    "Identity": lambda: L.Identity((6, 5)),
    "CircularBlur": lambda: L.CircularBlur(gaussian_kernel(3, 1.0), (6, 5)),
    "Inpainting": lambda: L.Inpainting(random_pixel_mask((6, 5), 0.5, seed=0)),
}
BAD_MU = [
    0.0,
    0,
    -0.5,
    float("nan"),
    float("inf"),
    True,
    "1",
    None,
    np.float32(0),
    [1.0, 0.0],
    np.array([1.0, -1.0]),
]


@pytest.mark.parametrize("name", sorted(PROX_OPERATORS))
@pytest.mark.parametrize("mu", BAD_MU, ids=repr)
def test_data_prox_refuses_mu_that_is_not_finite_and_positive(name, mu):
    op = PROX_OPERATORS[name]()
    x = np.random.default_rng(0).random((2, 1, 6, 5))
    with pytest.raises(ValueError, match=rf"{name}\.data_prox: mu must be finite and > 0"):
        op.data_prox(x, x, mu)


@pytest.mark.parametrize("name", sorted(PROX_OPERATORS))
def test_data_prox_takes_positive_numbers_lists_and_framework_arrays(name, arrays):
    op = PROX_OPERATORS[name]()
    y, z = np.random.default_rng(1).random((2, 3, 1, 6, 5))
    per_image = op.data_prox(y, z, np.array([0.5, 0.5, 0.5]))
    for mu in (0.5, np.float32(0.5), [0.5, 0.5, 0.5]):
        np.testing.assert_allclose(op.data_prox(y, z, mu), per_image, rtol=1e-12)
    ours = arrays.numpy(op.data_prox(arrays.asarray(y), arrays.asarray(z), arrays.asarray(np.full(3, 0.5))))
    np.testing.assert_allclose(ours, per_image, rtol=0, atol=10 * arrays.tol)


def test_inpainting_data_prox_is_exact_for_a_fractional_mask():
    m = np.random.default_rng(2).uniform(0.0, 1.0, (6, 5))
    op = L.Inpainting(m)
    y, z = np.random.default_rng(3).random((2, 2, 1, 6, 5))
    x = op.data_prox(y, z, 0.3)
    np.testing.assert_allclose(op.adjoint(op.forward(x)) + 0.3 * x, op.adjoint(y) + 0.3 * z, atol=1e-12)


@pytest.mark.parametrize("mask", [np.full((4, 4), np.nan), np.full((4, 4), np.inf), np.full((4, 4), 1.5)])
def test_inpainting_refuses_masks_that_are_not_finite_in_0_1(mask):
    with pytest.raises(ValueError, match=r"inpainting mask: values must be finite and lie in \[0, 1\]"):
        L.Inpainting(mask)


@pytest.mark.parametrize("size", [2.7, 64.0, True, "64", None, 1])
def test_radon_refuses_sizes_that_are_not_integers_from_2(size):
    with pytest.raises(ValueError, match=r"Radon image size: expected an integer >= 2, got"):
        L.Radon(size)


@pytest.mark.parametrize("size", [(64, 48), [64, 64], np.array([64, 64])])
def test_radon_says_it_takes_one_int_for_square_images(size):
    with pytest.raises(ValueError, match=r"one int n for square \(n, n\) images \(non-square images are not"):
        L.Radon(size)


@pytest.mark.parametrize("theta", [30, 2.7, np.array([True, False]), np.zeros((2, 2)), [0.0, np.nan]])
def test_radon_refuses_theta_that_is_not_a_1d_array_of_finite_angles(theta):
    with pytest.raises(
        ValueError, match=r"theta: expected a non-empty 1-D array of finite angles in degrees"
    ):
        RadonGeometry.build(8, theta)


def test_radon_accepts_numpy_integer_sizes():
    assert L.Radon(np.int64(8), np.arange(0.0, 180.0, 45.0)).image_shape == (8, 8)


@pytest.mark.parametrize("shape", [2.7, (8, 2.5), (True, 4), (8,), (8, 8, 8), (0, 4), "88", np.array(8)])
def test_image_shapes_refuse_non_integers_and_bools(shape):
    with pytest.raises(ValueError, match=r"image_shape: expected a positive int or a pair \(H, W\)"):
        L.Identity(shape)


def test_image_shapes_accept_ints_pairs_and_numpy_integers():
    assert (
        pair(7, "s") == (7, 7)
        and pair((np.int64(4), 5), "s") == (4, 5)
        and pair(np.array([3, 2]), "s") == (3, 2)
    )


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda size: gaussian_kernel(size, 1.0), "Gaussian kernel size"),
        (lambda size: motion_blur_kernel(size, seed=0), "motion-blur kernel size"),
        (
            lambda size: motion_trajectory(seed=0, max_length=5.0, num_steps=size),
            "motion trajectory num_steps",
        ),
    ],
)
@pytest.mark.parametrize("size", [4.5, True, "5"])
def test_kernel_sizes_refuse_non_integers_and_bools(make, what, size):
    with pytest.raises(ValueError, match=rf"{what}: expected an integer >= \d, got"):
        make(size)
