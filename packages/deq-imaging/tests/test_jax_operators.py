"""JAX-only operator behaviour: gradients of the Radon pair are each other's maps, seeded noise (float32)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from deq_core.testing.fixtures import jax_x64  # noqa: E402
from deq_imaging.operators import jax as J  # noqa: E402


@pytest.fixture
def x64():
    """JAX's float64 for one test, the flag restored after it."""
    with jax_x64():
        yield


def test_radon_gradients_are_transposes(x64):
    op = J.Radon(8, np.arange(0, 180, 30.0))
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.random((1, 1, 8, 8))), jnp.asarray(rng.random((1, 1, *op.output_shape)))
    assert x.dtype == jnp.float64
    g = jax.jit(jax.grad(lambda v: jnp.sum(op.forward(v) * y)))(x)
    np.testing.assert_allclose(g, jax.jit(op.adjoint)(y), rtol=1e-10, atol=1e-12)
    g2 = jax.jit(jax.grad(lambda w: jnp.sum(op.adjoint(w) * x)))(y)
    np.testing.assert_allclose(g2, jax.jit(op.forward)(x), rtol=1e-10, atol=1e-12)


def test_noise_seeded_and_matches_level():
    with jax_x64(False):
        x = jnp.full((4, 1, 32, 32), 0.5)
        key = jax.random.PRNGKey(3)
        a = jax.jit(J.gaussian_noise)(key, x, 0.1)
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(a, J.gaussian_noise(key, x, 0.1), rtol=1e-6)
        assert not jnp.array_equal(a, J.gaussian_noise(jax.random.PRNGKey(4), x, 0.1))
        assert float((a - x).std()) == pytest.approx(0.1, rel=0.05)
        per = J.gaussian_noise(key, x, jnp.asarray([0.0, 0.0, 0.2, 0.2]))
        assert jnp.array_equal(per[:2], x[:2])
        assert float((per[2:] - x[2:]).std()) == pytest.approx(0.2, rel=0.05)
        p = J.poisson_noise(key, x, 100.0)
        assert float(p.mean()) == pytest.approx(0.5, rel=0.02)
        assert float(p.var()) == pytest.approx(0.005, rel=0.1)
