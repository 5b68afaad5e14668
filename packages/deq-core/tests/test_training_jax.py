"""The JAX trainer: learning, evaluation cadence, exact resume, regularisers and 2-device data parallelism.

Run as a script with ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` it is the data-parallel check
that :func:`test_data_parallel_matches_one_device` launches; it prints the largest weight difference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
optax = pytest.importorskip("optax")

import functools  # noqa: E402

import jax.numpy as jnp  # noqa: E402

from deq_core.jax import DEQ  # noqa: E402
from deq_core.jax.regularizers import (  # noqa: E402
    SpectralNorm,
    jacobian_frobenius,
    power_iterate,
    spectral_normalize,
    trainable,
)
from deq_core.jax.train import fit  # noqa: E402
from deq_core.testing.fixtures import jax_x64  # noqa: E402
from deq_core.training import CheckpointDir, TrainConfig, WarmStartCache  # noqa: E402

DIM, HIDDEN, BATCH = 3, 6, 8


@pytest.fixture(autouse=True, scope="module")
def float64():
    """Every test of this module runs in float64 (the flag is restored after the module)."""
    with jax_x64():
        yield


class Cell(eqx.Module):
    """``z -> tanh(W z + u)`` over a batch."""

    linear: eqx.Module

    def __call__(self, z, u):
        return jnp.tanh(jax.vmap(self.linear)(z) + u)


class Net(eqx.Module):
    """Encoder, DEQ (Anderson forward, implicit backward), linear read-out."""

    encode: eqx.nn.Linear
    deq: DEQ
    decode: eqx.nn.Linear

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        linear = eqx.nn.Linear(HIDDEN, HIDDEN, use_bias=False, key=k2, dtype=jnp.float64)
        linear = eqx.tree_at(lambda lin: lin.weight, linear, linear.weight * 0.5)
        self.encode = eqx.nn.Linear(DIM, HIDDEN, key=k1, dtype=jnp.float64)
        self.deq = DEQ(Cell(linear), solver="anderson", tol=1e-10, max_iter=60)
        self.decode = eqx.nn.Linear(HIDDEN, 1, key=k3, dtype=jnp.float64)

    def __call__(self, x):
        z, _ = self.deq(jax.vmap(self.encode)(x))
        return jax.vmap(self.decode)(z)


def sample(step, key):
    """A fresh regression batch ``y = sin(x1 + x2 - x3)``."""
    x = jax.random.normal(key, (BATCH, DIM), jnp.float64)
    return x, jnp.sin(x @ jnp.array([1.0, 1.0, -1.0]))[:, None]


def mse(model, batch):
    """Mean squared error of ``model`` on a batch."""
    x, y = batch
    return jnp.mean((model(x) - y) ** 2)


jitted_mse = eqx.filter_jit(mse)


def leaves(model):
    """The model's arrays as numpy."""
    return [np.asarray(leaf) for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


@functools.cache
def held_out():
    """A fixed evaluation batch."""
    return sample(0, jax.random.key(12345))


# One optimizer object: fits with the same optimizer and loss reuse the compiled step. At lr 0.05 the
# held-out error oscillated (0.02 -> 0.58 between steps 30 and 40), so the check below depended on where
# the oscillation stood; at 0.01 it falls steadily.
ADAM = optax.adam(0.01)


def test_fit_learns_and_evaluates_on_schedule():
    model = Net(jax.random.key(0))
    evaluated = []

    def evaluate(m, step):
        evaluated.append(step)
        return {"mse": float(jitted_mse(m, held_out()))}

    before = evaluate(model, 0)["mse"]
    config = TrainConfig(steps=40, eval_every=15, log_every=20, progress=True)
    model, history = fit(model, ADAM, mse, sample, config, evaluate=evaluate)
    assert evaluated == [0, 15, 30, 40]
    assert [s for s, _ in history.losses] == [20, 40]
    assert history.evaluations[-1][1]["mse"] < 0.5 * before


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    steps, crash_at = 12, 8
    options = {"checkpoint_every": 3, "jacobian_weight": 0.1, "progress": False}
    optimizer = optax.adam(optax.exponential_decay(0.05, 4, 0.5))
    reference, _ = fit(
        Net(jax.random.key(0)),
        optimizer,
        mse,
        sample,
        TrainConfig(steps=steps, **options, checkpoint_dir=str(tmp_path / "a")),
    )

    def crashing(step, key):
        if step == crash_at:
            raise KeyboardInterrupt("simulated crash")
        return sample(step, key)

    config = TrainConfig(steps=steps, **options, checkpoint_dir=str(tmp_path / "b"))
    with pytest.raises(KeyboardInterrupt):
        fit(Net(jax.random.key(0)), optimizer, mse, crashing, config)
    assert CheckpointDir(tmp_path / "b").steps() == [3, 6]
    resumed, history = fit(Net(jax.random.key(1)), optimizer, mse, sample, config)
    assert history.start == 6
    for a, b in zip(leaves(resumed), leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_with_batch_iterable(tmp_path):
    data = [sample(i, jax.random.key(i)) for i in range(6)]
    reference, _ = fit(Net(jax.random.key(0)), ADAM, mse, data, TrainConfig(steps=6, progress=False))
    half = TrainConfig(steps=3, checkpoint_every=3, checkpoint_dir=str(tmp_path), progress=False)
    fit(Net(jax.random.key(0)), ADAM, mse, data, half)
    full = TrainConfig(steps=6, checkpoint_every=3, checkpoint_dir=str(tmp_path), progress=False)
    resumed, history = fit(Net(jax.random.key(2)), ADAM, mse, data, full)
    assert history.start == 3
    for a, b in zip(leaves(resumed), leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_files(tmp_path):
    config = TrainConfig(
        steps=2, checkpoint_every=1, keep_checkpoints=1, checkpoint_dir=str(tmp_path), progress=False
    )
    model, _ = fit(Net(jax.random.key(0)), ADAM, mse, sample, config)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["step-000000002.json", "step-000000002.model.eqx", "step-000000002.state.eqx"]
    loaded = eqx.tree_deserialise_leaves(tmp_path / "step-000000002.model.eqx", Net(jax.random.key(5)))
    for a, b in zip(leaves(loaded), leaves(model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "step-000000002.json").read_text())["metadata"]["backend"] == "jax"


def test_jacobian_frobenius_matches_exact_norm():
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    W = jax.random.normal(k1, (5, 5), jnp.float64)
    u = jax.random.normal(k2, (4, 5), jnp.float64)
    z = jax.random.normal(k3, (4, 5), jnp.float64)

    def estimate(W):
        return jacobian_frobenius(lambda z, u: jnp.tanh(z @ W.T + u), z, u, k4, probes=4000)

    s = 1 - jnp.tanh(z @ W.T + u) ** 2
    exact = float(jnp.sum((s[:, :, None] * W[None]) ** 2) / z.size)
    value, grad = jax.jit(jax.value_and_grad(estimate))(W)
    assert abs(float(value) - exact) < 0.05 * exact
    assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).sum()) > 0


@eqx.filter_jit
def jacobian_at_fixed_point(model):
    """The Hutchinson estimate (64 probes) at the fixed points of the held-out batch."""
    u = jax.vmap(model.encode)(held_out()[0])
    z, _ = model.deq(u)
    return jacobian_frobenius(model.deq.cell, z, u, jax.random.key(0), probes=64)


def test_jacobian_penalty_shrinks_the_jacobian():
    def jacobian_at_end(weight):
        model, _ = fit(
            Net(jax.random.key(0)),
            ADAM,
            mse,
            sample,
            TrainConfig(steps=25, jacobian_weight=weight, progress=False),
        )
        return float(jacobian_at_fixed_point(model))

    assert jacobian_at_end(5.0) < 0.7 * jacobian_at_end(0.0)


def test_spectral_norm_wrapper():
    layer = eqx.nn.Linear(6, 4, key=jax.random.key(0), dtype=jnp.float64)
    layer = eqx.tree_at(lambda lin: lin.weight, layer, layer.weight * 20)
    norm = power_iterate(SpectralNorm(layer, key=jax.random.key(1)), steps=300)
    weight = norm.normalized().weight
    assert abs(float(jnp.linalg.norm(weight, ord=2)) - 1.0) < 1e-6
    x = jnp.ones(6)
    np.testing.assert_allclose(norm(x), weight @ x + layer.bias, rtol=1e-12)

    model = spectral_normalize(Net(jax.random.key(0)), jax.random.key(3))
    assert isinstance(model.deq.cell.linear, SpectralNorm) and isinstance(model.encode, SpectralNorm)
    assert trainable(model).deq.cell.linear.u is False
    assert trainable(model).deq.cell.linear.layer.weight is True
    u_before = model.deq.cell.linear.u
    trained, history = fit(
        model, optax.adamw(0.05, weight_decay=0.5), mse, sample, TrainConfig(steps=5, progress=False)
    )
    assert np.isfinite(history.losses[-1][1])
    assert not np.allclose(trained.deq.cell.linear.layer.weight, model.deq.cell.linear.layer.weight)
    u_after = trained.deq.cell.linear.u
    expected = power_iterate(model, steps=1).deq.cell.linear.u  # the first step's update, not the optimizer's
    assert not np.allclose(u_after, u_before) and abs(float(jnp.linalg.norm(u_after)) - 1) < 1e-9
    assert abs(float(jnp.linalg.norm(expected)) - 1) < 1e-9
    with pytest.raises(ValueError, match="no Linear"):
        spectral_normalize({"a": jnp.ones(3)}, jax.random.key(0))


def test_bad_input_errors():
    model = Net(jax.random.key(0))
    with pytest.raises(ValueError, match="scalar array"):
        fit(
            model,
            ADAM,
            lambda m, b: (m(b[0]) - b[1]) ** 2,
            sample,
            TrainConfig(steps=1, progress=False),
        )
    with pytest.raises(ValueError, match="contains no deq_core DEQ"):
        fit(
            eqx.nn.Linear(3, 1, key=jax.random.key(0)),
            ADAM,
            mse,
            sample,
            TrainConfig(steps=1, jacobian_weight=1.0, progress=False),
        )
    with pytest.warns(UserWarning, match="threads is not applied"):
        fit(model, ADAM, mse, sample, TrainConfig(steps=1, threads=1, progress=False))


def data_parallel_check() -> None:
    """Train on 2 devices (batch sharded) and on 1; print the devices and the largest weight difference."""
    assert len(jax.devices()) == 2, jax.devices()
    config = dict(steps=3, log_every=1, progress=False, jacobian_weight=0.0)
    two, h2 = fit(Net(jax.random.key(0)), ADAM, mse, sample, TrainConfig(**config, data_parallel=True))
    one, h1 = fit(Net(jax.random.key(0)), ADAM, mse, sample, TrainConfig(**config, data_parallel=False))
    weight = two.deq.cell.linear.weight
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(leaves(two), leaves(one), strict=True))
    loss = max(abs(a - b) for (_, a), (_, b) in zip(h2.losses, h1.losses, strict=True))
    moved = float(
        np.max(np.abs(np.asarray(weight) - np.asarray(Net(jax.random.key(0)).deq.cell.linear.weight)))
    )
    print(
        json.dumps(
            {"devices": len(weight.sharding.device_set), "diff": diff, "loss_diff": loss, "moved": moved}
        )
    )


def test_data_parallel_matches_one_device():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2
    assert result["moved"] > 1e-3
    assert result["diff"] < 1e-10 and result["loss_diff"] < 1e-10


# Warm starts: a training set of SAMPLES fixed inputs, each visited again and again.
SAMPLES = 12


@functools.cache
def warm_x():
    """The training set's inputs."""
    return jax.random.normal(jax.random.key(5), (SAMPLES, DIM), jnp.float64)


def warm_net(key):
    """:class:`Net` whose DEQ takes the Jacobian-free backward (the warm-start recipe)."""
    net = Net(key)
    deq = DEQ(net.deq.cell, solver="anderson", backward="jfb", tol=1e-10, max_iter=60)
    return eqx.tree_at(lambda n: n.deq, net, deq)


def warm_sample(step, key):
    """``(indices, (x, y))``: BATCH distinct samples of the fixed set, drawn with the sampler's key."""
    index = np.asarray(jax.random.permutation(key, SAMPLES)[:BATCH])
    x = warm_x()[index]
    return index, (x, jnp.sin(x @ jnp.array([1.0, 1.0, -1.0]))[:, None])


def warm_loss(model, data, z0):
    """Three solver iterations from the cached iterate, then the read-out's squared error."""
    x, y = data
    z, _ = model.deq(jax.vmap(model.encode)(x), z0, max_iter=3)
    return jnp.mean((jax.vmap(model.decode)(z) - y) ** 2), z


def make_warm():
    """A cache over the training set whose unknown rows start at zero."""
    return WarmStartCache(SAMPLES, lambda data: jnp.zeros((data[0].shape[0], HIDDEN), jnp.float64))


def test_warm_starts_continue_the_iteration_and_resume_exactly(tmp_path):
    warm = make_warm()
    reference, _ = fit(
        warm_net(jax.random.key(0)),
        ADAM,
        warm_loss,
        warm_sample,
        TrainConfig(steps=9, progress=False),
        warm=warm,
    )
    cached = warm.state()
    assert warm.known.sum() == SAMPLES and warm.age.sum() == 9 * BATCH
    assert np.isfinite(np.asarray(cached["values"])).all()

    def crashing(step, key):
        if step == 7:
            raise KeyboardInterrupt("simulated crash")
        return warm_sample(step, key)

    config = TrainConfig(steps=9, checkpoint_every=3, progress=False, checkpoint_dir=str(tmp_path / "run"))
    with pytest.raises(KeyboardInterrupt):
        fit(warm_net(jax.random.key(0)), ADAM, warm_loss, crashing, config, warm=make_warm())
    resumed_warm = make_warm()
    resumed, history = fit(
        warm_net(jax.random.key(1)), ADAM, warm_loss, warm_sample, config, warm=resumed_warm
    )
    assert history.start == 6
    for a, b in zip(leaves(resumed), leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(resumed_warm.state()["values"]), np.asarray(cached["values"]))
    np.testing.assert_array_equal(resumed_warm.age, cached["age"])


def test_warm_start_skips_rows_that_are_not_finite():
    warm = make_warm()
    fit(
        warm_net(jax.random.key(0)),
        ADAM,
        warm_loss,
        warm_sample,
        TrainConfig(steps=2, progress=False),
        warm=warm,
    )
    row = int(np.flatnonzero(warm.known)[0])
    warm.values = warm.values.at[row].set(jnp.nan)
    start = warm.get(np.array([row]), (warm_x()[np.array([row])], None))
    np.testing.assert_array_equal(np.asarray(start), np.zeros((1, HIDDEN)))
    with pytest.raises(ValueError, match="loss_fn\\(model, data, z0\\) must return \\(loss, z\\)"):
        fit(
            warm_net(jax.random.key(0)),
            ADAM,
            lambda m, d, z0: m.deq(jax.vmap(m.encode)(d[0]), z0)[0].sum(),
            warm_sample,
            TrainConfig(steps=1, progress=False),
            warm=make_warm(),
        )


if __name__ == "__main__":
    with jax_x64():
        data_parallel_check()
