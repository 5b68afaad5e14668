"""JAX/Equinox FNO-DEQ and FNO: shapes, sizes, gradients under jit, spectral norm, contraction, training."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import jax.numpy as jnp  # noqa: E402

from deq_pde.models import ModelSettings, TrainSettings  # noqa: E402
from deq_pde.models.jax import (  # noqa: E402
    FNO,
    FNODEQ,
    FourierLayer,
    SpectralConv2d,
    count_params,
    predict,
    train,
)

SETTINGS = ModelSettings(width=6, modes=3, projection=10, train_iters=3, phantom_steps=2)


def _inputs(batch=3, n=9, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.choice([3.0, 12.0], (batch, n, n)), dtype=jnp.float32)


def test_predict_returns_the_solution_for_both_models():
    rng = np.random.default_rng(0)
    a = _inputs(batch=5)
    deq, fno = FNODEQ(9, SETTINGS, rng), FNO(9, SETTINGS, rng)
    np.testing.assert_allclose(predict(deq, a, batch=2), eqx.filter_jit(deq)(a)[0], atol=1e-5)
    np.testing.assert_allclose(predict(fno, a, batch=2), fno(a), atol=1e-5)
    assert predict(deq, a, steps=3).shape == a.shape


def test_shapes_and_equal_parameter_counts():
    rng = np.random.default_rng(0)
    a = _inputs()
    deq, fno = FNODEQ(9, SETTINGS, rng), FNO(9, SETTINGS, rng)
    u, z = eqx.filter_jit(deq)(a)
    assert u.shape == a.shape and z.shape == (3, 6, 9, 9)
    assert fno(a).shape == a.shape and deq.budget(a, 5).shape == a.shape
    assert count_params(deq) == count_params(fno)
    assert count_params(FNO(9, SETTINGS, rng, depth=3)) > count_params(fno)


def test_first_iterate_is_the_explicit_layer_with_the_same_weights():
    deq, fno = FNODEQ(9, SETTINGS, np.random.default_rng(0)), FNO(9, SETTINGS, np.random.default_rng(1))
    cell = deq.deq.cell
    fno = eqx.tree_at(
        lambda m: (m.codec, m.layers[0].spectral, m.layers[0].pointwise),
        fno,
        (deq.codec, cell.spectral, cell.pointwise),
    )
    a = _inputs()
    assert jnp.allclose(deq.budget(a, 1), fno(a), atol=1e-5)
    assert not jnp.allclose(deq.budget(a, 2), fno(a), atol=1e-3)


def test_parameter_count_matches_formula():
    w, m, p = SETTINGS.width, SETTINGS.modes, SETTINGS.projection
    expected = 4 * w + 2 * w * w * m * m * 2 + w * w + w + (w + 1) * p + p + 1
    assert count_params(FNO(9, SETTINGS, np.random.default_rng(0))) == expected


def test_spectral_conv_is_translation_equivariant():
    conv = SpectralConv2d(4, 3, np.random.default_rng(0))
    z = jnp.asarray(np.random.default_rng(1).standard_normal((2, 4, 12, 12)), jnp.float32)
    shifted = conv(jnp.roll(z, (2, 3), axis=(2, 3)))
    assert jnp.allclose(shifted, jnp.roll(conv(z), (2, 3), axis=(2, 3)), atol=1e-5)


def test_phantom_gradient_under_jit_reaches_every_parameter():
    deq = FNODEQ(9, SETTINGS, np.random.default_rng(0))
    a = _inputs()
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean(m(a)[0] ** 2)))(deq)
    for path in (grads.deq.cell.spectral.weight, grads.deq.cell.pointwise.weight, grads.codec.lift.weight):
        assert bool(jnp.any(path != 0)) and bool(jnp.all(jnp.isfinite(path)))


def test_operator_norm_matches_svd_and_bounds_the_layer():
    layer = FourierLayer(6, 3, np.random.default_rng(1), contraction=0.5)
    layer = eqx.tree_at(lambda lay: lay.spectral.weight, layer, layer.spectral.weight * 50.0)
    exact = jnp.linalg.matrix_norm(layer.mode_matrices(), ord=2).max()
    assert jnp.isclose(layer.operator_norm(iters=100), exact, rtol=1e-4)
    rng = np.random.default_rng(2)
    x, z1, z2 = (jnp.asarray(rng.standard_normal((1, 6, 8, 8)), jnp.float32) for _ in range(3))
    args = (x, layer.scale())
    ratio = jnp.linalg.norm(layer(z1, args) - layer(z2, args)) / jnp.linalg.norm(z1 - z2)
    assert float(layer.scale()) < 1.0 and float(ratio) <= 0.5 * 1.13 + 1e-4


def test_train_lowers_the_loss():
    a = _inputs(batch=8, seed=3)
    u = a[:, ::-1] * 0.01 + 0.1
    rng = np.random.default_rng(0)
    for model in (FNODEQ(9, SETTINGS, rng), FNO(9, SETTINGS, rng)):
        model, history = train(model, a, u, TrainSettings(epochs=6, batch=4, lr=5e-3), seed=0)
        assert len(history) == 6 and history[-1] < history[0]
