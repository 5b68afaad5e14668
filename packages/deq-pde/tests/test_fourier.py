"""The FNOs' shared math: numpy is the oracle, the framework runs the same lines on random shapes."""

import contextlib

import numpy as np
import pytest
from backends import FRAMEWORKS, asarray, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from deq_pde.models import fourier

pytestmark = pytest.mark.skipif(not FRAMEWORKS, reason="needs torch or jax")
FEW = settings(max_examples=5, deadline=None)


def _float64():
    """JAX in float64 for the comparison (torch follows its inputs' dtype)."""
    if FRAMEWORKS[0] != "jax":
        return contextlib.nullcontext()
    from deq_core.testing.fixtures import jax_x64

    return jax_x64()


def _complex(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@FEW
@given(
    b=st.integers(1, 2),
    c=st.integers(1, 3),
    h=st.integers(2, 9),
    w=st.integers(2, 9),
    modes=st.integers(1, 5),
    seed=st.integers(0, 99),
)
def test_spectral_conv_matches_numpy_and_is_translation_equivariant(b, c, h, w, modes, seed):
    rng = np.random.default_rng(seed)
    z, weight = rng.standard_normal((b, c, h, w)), _complex(rng, (2, c, c, modes, modes))
    reference = fourier.spectral_conv(z, weight, modes)
    assert reference.shape == z.shape and reference.dtype == np.float64
    shifted = fourier.spectral_conv(np.roll(z, (1, 2), axis=(2, 3)), weight, modes)
    np.testing.assert_allclose(shifted, np.roll(reference, (1, 2), axis=(2, 3)), atol=1e-12)
    backend = FRAMEWORKS[0]
    with _float64():
        ours = fourier.spectral_conv(asarray(backend, z), asarray(backend, weight, "complex128"), modes)
        np.testing.assert_allclose(to_numpy(ours), reference, rtol=1e-12, atol=1e-12)


@FEW
@given(width=st.integers(1, 4), modes=st.integers(1, 3), seed=st.integers(0, 99))
def test_operator_norm_matches_svd_in_numpy_and_the_framework(width, modes, seed):
    rng = np.random.default_rng(seed)
    weight, pointwise = _complex(rng, (2, width, width, modes, modes)), rng.standard_normal((width, width))
    matrices = fourier.mode_matrices(weight, pointwise)
    assert matrices.shape == (2 * modes * modes + 1, width, width)
    exact = np.linalg.norm(matrices, ord=2, axis=(1, 2)).max()
    assert np.isclose(fourier.operator_norm(matrices, lambda x: x, iters=300), exact, rtol=1e-6)
    backend = FRAMEWORKS[0]
    with _float64():
        ours = fourier.mode_matrices(asarray(backend, weight, "complex128"), asarray(backend, pointwise))
        np.testing.assert_allclose(to_numpy(ours), matrices, rtol=1e-14)
        norm = fourier.operator_norm(ours, lambda x: x, iters=7)
        np.testing.assert_allclose(
            float(norm), fourier.operator_norm(matrices, lambda x: x, iters=7), rtol=1e-12
        )
        assert float(fourier.contraction_scale(0.5, norm)) == min(1.0, 0.5 / float(norm))


@FEW
@given(batch=st.integers(1, 3), n=st.integers(2, 6), seed=st.integers(0, 99))
def test_codec_and_error_match_numpy(batch, n, seed):
    from deq_pde.models.settings import grid_channels

    rng = np.random.default_rng(seed)
    a, u, pred = (rng.standard_normal((batch, n, n)) for _ in range(3))
    scales, grid = fourier.codec_scales(a, u), grid_channels(n)
    assert np.allclose(scales, [a.mean(), a.std(ddof=1), u.mean(), u.std(ddof=1)])
    lifted, error = fourier.lift_input(a, scales, grid), fourier.relative_l2(pred, u)
    assert lifted.shape == (batch, 3, n, n)
    assert np.allclose(
        error,
        np.linalg.norm((pred - u).reshape(batch, -1), axis=1) / np.linalg.norm(u.reshape(batch, -1), axis=1),
    )
    backend = FRAMEWORKS[0]
    with _float64():
        xa, xu, xp = (asarray(backend, x) for x in (a, u, pred))
        np.testing.assert_allclose(to_numpy(fourier.codec_scales(xa, xu)), scales, rtol=1e-13)
        ours = fourier.lift_input(xa, asarray(backend, scales), asarray(backend, grid))
        np.testing.assert_allclose(to_numpy(ours), lifted, rtol=1e-13)
        np.testing.assert_allclose(to_numpy(fourier.relative_l2(xp, xu)), error, rtol=1e-13)
        assert np.isclose(fourier.mean_error(xp, xu), error.mean(), rtol=1e-13)


def test_bad_input_shape_is_named():
    with pytest.raises(ValueError, match=r"input must have shape \(B, 9, 9\)"):
        fourier.lift_input(np.zeros((2, 8, 8)), np.array([0.0, 1.0, 0.0, 1.0]), np.zeros((2, 9, 9)))
