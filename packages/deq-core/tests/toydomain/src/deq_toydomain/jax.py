"""The toy domain in JAX/Equinox: a small-MLP DEQ, an explicit MLP of the same size, the analysis."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from deq_core.errors import ModelFileError
from deq_core.jax import DEQ
from deq_core.jax.analysis import deq_iterate_exactly, lipschitz_summary, scaling_analysis
from deq_core.jax.weights import load_weights, save_weights
from deq_toydomain.problem import Problem


class Dense(eqx.Module):
    """A batched affine layer ``x W^T + b`` initialised like ``torch.nn.Linear``."""

    weight: jax.Array
    bias: jax.Array | None

    def __init__(self, fan_in: int, fan_out: int, rng: np.random.Generator, bias: bool = True):
        bound = 1.0 / math.sqrt(fan_in)
        uniform = lambda shape: jnp.asarray(rng.uniform(-bound, bound, shape), dtype=jnp.float32)
        self.weight = uniform((fan_out, fan_in))
        self.bias = uniform((fan_out,)) if bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the layer to a batch."""
        out = x @ self.weight.T
        return out if self.bias is None else out + self.bias


class Cell(eqx.Module):
    """``z <- W2 tanh(W1 [z, u] + b1) + b2``."""

    inner: Dense
    outer: Dense

    def __init__(self, n: int, hidden: int, rng: np.random.Generator):
        self.inner = Dense(2 * n, hidden, rng)
        self.outer = Dense(hidden, n, rng)

    def __call__(self, z: jax.Array, u: jax.Array) -> jax.Array:
        """One application of the cell."""
        return self.outer(jnp.tanh(self.inner(jnp.concatenate([z, u], axis=1))))


class Implicit(eqx.Module):
    """Measurements -> learned lift ``u = L y`` -> fixed point of :class:`Cell`."""

    lift: Dense
    deq: DEQ

    def __init__(self, n: int, m: int, hidden: int, rng: np.random.Generator, **solve_options: Any):
        self.lift = Dense(m, n, rng, bias=False)
        self.deq = DEQ(Cell(n, hidden, rng), **solve_options)

    def __call__(self, y: jax.Array) -> jax.Array:
        """The equilibrium output (training and reference use)."""
        return self.deq(self.lift(y))[0]

    def budget(self, y: jax.Array, steps: int) -> jax.Array:
        """The output after exactly ``steps`` solver iterations from zero."""
        return deq_iterate_exactly(self.deq, self.lift(y), steps)


class Explicit(eqx.Module):
    """A two-hidden-layer tanh MLP."""

    layers: tuple[Dense, Dense, Dense]

    def __init__(self, n: int, m: int, width: int, rng: np.random.Generator):
        self.layers = (Dense(m, width, rng), Dense(width, width, rng), Dense(width, n, rng))

    def __call__(self, y: jax.Array) -> jax.Array:
        """The reconstruction of a batch of measurements."""
        h = jnp.tanh(self.layers[0](y))
        h = jnp.tanh(self.layers[1](h))
        return self.layers[2](h)


def _params(model: eqx.Module) -> int:
    return sum(int(a.size) for a in jax.tree.leaves(eqx.filter(model, eqx.is_array)))


def _explicit_width(n: int, m: int, budget: int) -> int:
    """The largest width whose explicit MLP has at most ``budget`` parameters (at least 1)."""
    count = lambda h: (m + 1) * h + (h + 1) * h + (h + 1) * n
    return max(h for h in range(1, 4 * budget) if count(h) <= budget or h == 1)


def _budget(model: Implicit, y: jax.Array, steps: int) -> jax.Array:
    return model.budget(y, steps)


def _train(
    model: eqx.Module, x: jax.Array, y: jax.Array, cfg: Any, rng: np.random.Generator
) -> tuple[eqx.Module, float]:
    """Adam on the mean squared error; returns the model and the last minibatch loss."""
    optimizer = optax.adam(cfg.lr)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model, opt_state, index):
        loss, grads = eqx.filter_value_and_grad(lambda mdl: jnp.mean((mdl(y[index]) - x[index]) ** 2))(model)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    loss = jnp.zeros(())
    for index in rng.integers(0, x.shape[0], (cfg.train_steps, cfg.batch)):
        model, opt_state, loss = step(model, opt_state, jnp.asarray(index))
    return model, float(loss)


def train_and_analyse(problem: Problem, cfg: Any, device: str, seed: int) -> dict[str, Any]:
    """Train both models and measure quality and Lipschitz estimates on the test set."""
    platform = "gpu" if device == "cuda" else device
    jax_device = jax.devices(platform)[0]
    with jax.default_device(jax_device):
        rng = np.random.default_rng(seed)
        train_x, train_y = jnp.asarray(problem.train_x), jnp.asarray(problem.train_y)
        test_x, test_y = jnp.asarray(problem.test_x), jnp.asarray(problem.test_y)
        implicit = Implicit(
            cfg.n, cfg.m, cfg.hidden, rng, solver=cfg.solver, tol=cfg.tol, max_iter=cfg.max_iter
        )
        width = _explicit_width(cfg.n, cfg.m, _params(implicit))
        explicit = Explicit(cfg.n, cfg.m, width, rng)
        implicit, implicit_loss = _train(implicit, train_x, train_y, cfg, np.random.default_rng(seed + 2))
        explicit, explicit_loss = _train(explicit, train_x, train_y, cfg, np.random.default_rng(seed + 2))
        directions = jnp.asarray(rng.standard_normal((cfg.directions, cfg.m)), dtype=test_y.dtype)
        mse = lambda prediction, target: float(jnp.mean((prediction - target) ** 2))
        scaling = scaling_analysis(
            eqx.Partial(_budget, implicit),
            test_y,
            test_x,
            cfg.budgets,
            mse,
            directions,
            cfg.scales,
            lipschitz_samples=cfg.lipschitz_samples,
            power_iters=cfg.power_iters,
            seed=seed,
        )
        compiled = eqx.filter_jit(explicit)
        explicit_lipschitz = lipschitz_summary(
            compiled, test_y[: cfg.lipschitz_samples], directions, cfg.scales, cfg.power_iters, seed
        )
        return {
            "scaling": scaling,
            "explicit_quality": mse(compiled(test_y), test_x),
            "explicit_lipschitz": explicit_lipschitz,
            "params": {"implicit": _params(implicit), "explicit": _params(explicit)},
            "train_loss": {"implicit": implicit_loss, "explicit": explicit_loss},
            "models": {"implicit": implicit, "explicit": explicit},
            "model_config": {"implicit": {}, "explicit": {"width": width}},
        }


WEIGHTS = "weights.eqx"


def weight_writer(model: eqx.Module):
    """``write_files`` for :func:`deq_core.model_files.write_model`: the leaves via Equinox."""

    def write(folder: Path) -> list[str]:
        save_weights(model, folder / WEIGHTS)
        return [WEIGHTS]

    return write


def load(folder: Path, manifest: dict[str, Any], device: str | None):
    """The predictor ``(y, steps) -> x`` (numpy in and out) of the model folder ``folder``."""
    cfg, name = manifest["config"], manifest["name"]
    rng = np.random.default_rng(0)  # a template only: every leaf is read from the file
    if name == "implicit":
        solve = {key: cfg[key] for key in ("solver", "tol", "max_iter")}
        like = Implicit(cfg["n"], cfg["m"], cfg["hidden"], rng, **solve)
    else:
        like = Explicit(cfg["n"], cfg["m"], cfg["width"], rng)
    model = load_weights(like, folder / WEIGHTS, ModelFileError)
    target = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    model = jax.tree.map(lambda leaf: jax.device_put(leaf, target) if eqx.is_array(leaf) else leaf, model)

    def predict(y: np.ndarray, steps: int | None) -> np.ndarray:
        batch = jax.device_put(jnp.asarray(y, dtype=jnp.float32), target)
        out = model.budget(batch, steps) if steps is not None and name == "implicit" else model(batch)
        return np.asarray(out)

    return predict
