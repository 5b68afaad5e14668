"""JAX operators under jit: exact adjoints, agreement with the numpy reference (and so with torch), errors."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from imaging_checks import check_adjoint, random_pair, reference_op  # noqa: E402
from skimage.transform import iradon, radon  # noqa: E402

from deq_imaging.datasets import shepp_logan  # noqa: E402
from deq_imaging.datasets.jax import to_jax  # noqa: E402
from deq_imaging.operators import gaussian_kernel  # noqa: E402
from deq_imaging.operators import jax as J  # noqa: E402
from deq_imaging.operators.reference import power_norm  # noqa: E402


def _np_fn(fn, dtype):
    jitted = jax.jit(fn)
    return lambda a: np.asarray(jitted(jnp.asarray(a, dtype=dtype)))


@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 1e-5), (jnp.float64, 1e-10)])
def test_adjoint(operator_case, dtype, tol):
    _, cls, args, ch = operator_case
    op = getattr(J, cls)(*args)
    x, y = random_pair(op, ch, seed=1)
    check_adjoint(_np_fn(op.forward, dtype), _np_fn(op.adjoint, dtype), x, y, tol)


def test_matches_reference(operator_case):
    _, cls, args, ch = operator_case
    op, ref = getattr(J, cls)(*args), reference_op(cls, args)
    x, y = random_pair(op, ch, seed=2)
    fx, ay = _np_fn(op.forward, jnp.float64)(x), _np_fn(op.adjoint, jnp.float64)(y)
    np.testing.assert_allclose(fx, ref.forward(x), rtol=0, atol=1e-10 * np.abs(fx).max())
    np.testing.assert_allclose(ay, ref.adjoint(y), rtol=0, atol=1e-10 * np.abs(ay).max())
    f32 = op.forward(jnp.asarray(x, dtype=jnp.float32))
    assert f32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(f32), fx, rtol=0, atol=1e-5 * np.abs(fx).max())


def test_bad_shape_and_dtype(operator_case):
    _, cls, args, ch = operator_case
    op = getattr(J, cls)(*args)
    h, w = op.image_shape
    with pytest.raises(ValueError, match=rf"expected shape \(N, C, {h}, {w}\)"):
        op.forward(jnp.zeros((1, ch, h + 1, w)))
    with pytest.raises(ValueError, match="dtype"):
        op.forward(jnp.zeros((1, ch, h, w), dtype=jnp.int32))
    with pytest.raises(ValueError, match="expected shape"):
        op.adjoint(jnp.zeros((1, ch, h + 3, w + 3)))


def test_norm_matches_power_iteration(operator_case):
    _, cls, args, _ = operator_case
    op, ref = getattr(J, cls)(*args), reference_op(cls, args)
    assert op.norm() == pytest.approx(
        power_norm(ref, op.image_shape, n_iter=100 if cls == "Radon" else 300), rel=5e-3
    )


@pytest.mark.parametrize("cls", ["Identity", "CircularBlur", "Inpainting"])
def test_data_prox_solves_normal_equations(cls):
    rng = np.random.default_rng(0)
    args = {
        "Identity": ((10, 12),),
        "CircularBlur": (gaussian_kernel(5, 1.5), (10, 12)),
        "Inpainting": ((rng.random((10, 12)) < 0.5).astype(float),),
    }[cls]
    op = getattr(J, cls)(*args)
    y, z = jnp.asarray(rng.random((3, 2, 10, 12))), jnp.asarray(rng.random((3, 2, 10, 12)))
    mu = jnp.asarray([0.1, 1.0, 5.0])
    x = jax.jit(op.data_prox)(y, z, mu)
    m = mu.reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(
        op.adjoint(op.forward(x)) + m * x, op.adjoint(y) + m * z, rtol=1e-10, atol=1e-10
    )


def test_radon_matches_skimage_and_iradon_reconstructs():
    x = shepp_logan(64)
    op = J.Radon(64)
    ours = np.asarray(jax.jit(op.forward)(to_jax(x, jnp.float64)))[0, 0]
    sk = radon(x[0, 0].astype(np.float64), circle=True)
    assert ours.shape == sk.shape == (64, 180)
    assert np.linalg.norm(ours - sk) / np.linalg.norm(sk) < 0.02
    rec = iradon(ours, circle=True)
    assert np.linalg.norm(rec - x[0, 0]) / np.linalg.norm(x[0, 0]) < 0.2
    fbp = np.asarray(jax.jit(op.fbp)(jnp.asarray(ours[None, None])))[0, 0]
    assert np.linalg.norm(fbp - rec) / np.linalg.norm(rec) < 0.05


def test_radon_gradients_are_transposes():
    op = J.Radon(8, np.arange(0, 180, 30.0))
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.random((1, 1, 8, 8))), jnp.asarray(rng.random((1, 1, *op.output_shape)))
    g = jax.jit(jax.grad(lambda v: jnp.sum(op.forward(v) * y)))(x)
    np.testing.assert_allclose(g, jax.jit(op.adjoint)(y), rtol=1e-10, atol=1e-12)
    g2 = jax.jit(jax.grad(lambda w: jnp.sum(op.adjoint(w) * x)))(y)
    np.testing.assert_allclose(g2, jax.jit(op.forward)(x), rtol=1e-10, atol=1e-12)


def test_noise_seeded_and_matches_level():
    x = jnp.full((4, 1, 32, 32), 0.5)
    key = jax.random.PRNGKey(3)
    a = jax.jit(J.gaussian_noise)(key, x, 0.1)
    np.testing.assert_allclose(a, J.gaussian_noise(key, x, 0.1), rtol=1e-12)
    assert not jnp.array_equal(a, J.gaussian_noise(jax.random.PRNGKey(4), x, 0.1))
    assert float((a - x).std()) == pytest.approx(0.1, rel=0.05)
    per = J.gaussian_noise(key, x, jnp.asarray([0.0, 0.0, 0.2, 0.2]))
    assert jnp.array_equal(per[:2], x[:2]) and float((per[2:] - x[2:]).std()) == pytest.approx(0.2, rel=0.05)
    p = J.poisson_noise(key, x, 100.0)
    assert float(p.mean()) == pytest.approx(0.5, rel=0.02) and float(p.var()) == pytest.approx(0.005, rel=0.1)
