"""JAX/Equinox FNO-DEQ and FNO: shapes, sizes, gradients under jit, spectral norm, contraction, training.

They run in float32 (JAX's default), except the resume test, which turns float64 on for itself.
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import fno  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from deq_pde.models import TrainSettings  # noqa: E402
from deq_pde.models.jax import FNO, FNODEQ, FourierLayer, count_params, predict, train  # noqa: E402


def _inputs(batch=3, seed=0):
    return jnp.asarray(fno.inputs(batch, seed=seed), dtype=jnp.float32)


def test_predict_and_shapes_of_both_models():
    rng = np.random.default_rng(0)
    a = _inputs(batch=5)
    deq, explicit = FNODEQ(9, fno.SETTINGS, rng), FNO(9, fno.SETTINGS, rng)
    u, z = eqx.filter_jit(deq)(a)
    assert u.shape == a.shape and z.shape == (5, 6, 9, 9) and u.dtype == jnp.float32
    np.testing.assert_allclose(predict(deq, a, batch=2), u, atol=1e-5)
    np.testing.assert_allclose(predict(explicit, a, batch=2), explicit(a), atol=1e-5)
    assert predict(deq, a, steps=3).shape == a.shape
    assert count_params(deq) == count_params(explicit)
    assert count_params(FNO(9, fno.SETTINGS, rng, depth=3)) > count_params(explicit)


def test_first_iterate_is_the_explicit_layer_with_the_same_weights():
    deq = FNODEQ(9, fno.SETTINGS, np.random.default_rng(0))
    explicit = FNO(9, fno.SETTINGS, np.random.default_rng(1))
    cell = deq.deq.cell
    explicit = eqx.tree_at(
        lambda m: (m.codec, m.layers[0].spectral, m.layers[0].pointwise),
        explicit,
        (deq.codec, cell.spectral, cell.pointwise),
    )
    a = _inputs()
    assert jnp.allclose(deq.budget(a, 1), explicit(a), atol=1e-5)
    assert not jnp.allclose(deq.budget(a, 2), explicit(a), atol=1e-3)


def test_parameter_count_matches_formula():
    w, m, p = fno.SETTINGS.width, fno.SETTINGS.modes, fno.SETTINGS.projection
    expected = 4 * w + 2 * w * w * m * m * 2 + w * w + w + (w + 1) * p + p + 1
    assert count_params(FNO(9, fno.SETTINGS, np.random.default_rng(0))) == expected


def test_phantom_gradient_under_jit_reaches_every_parameter():
    deq = FNODEQ(9, fno.SETTINGS, np.random.default_rng(0))
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


def test_train_lowers_the_loss_and_keeps_the_constants():
    a = _inputs(batch=8, seed=3)
    u = jnp.asarray(fno.targets(np.asarray(a)))
    rng = np.random.default_rng(0)
    for model in (FNODEQ(9, fno.SETTINGS, rng), FNO(9, fno.SETTINGS, rng)):
        trained, history = train(model, a, u, TrainSettings(epochs=6, batch=4, lr=5e-3), seed=0)
        assert len(history) == 6 and history[-1] < history[0]
        assert jnp.array_equal(trained.codec.grid, model.codec.grid)
        assert np.allclose(trained.codec.scales, [a.mean(), a.std(ddof=1), u.mean(), u.std(ddof=1)])


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, x64):
    a = jnp.asarray(fno.inputs(8, seed=3))
    u = jnp.asarray(fno.targets(fno.inputs(8, seed=3)))
    settings = TrainSettings(epochs=3, batch=4, lr=5e-3)  # 2 steps per epoch
    float64 = lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x  # noqa: E731

    def run(**checkpoints):
        model = jax.tree.map(float64, FNODEQ(9, fno.SETTINGS, np.random.default_rng(0)))
        return train(model, a, u, settings, seed=0, **checkpoints)

    whole, losses = run()
    folder = {"checkpoint_dir": str(tmp_path), "checkpoint_every": 1}
    run(**folder, stop_after=3)  # killed in the middle of the second epoch
    resumed, tail = run(**folder)
    assert whole.codec.lift.weight.dtype == jnp.float64
    for ours, theirs in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed), strict=True):
        assert jnp.array_equal(ours, theirs)
    assert tail == losses[-1:] and len(losses) == 3
