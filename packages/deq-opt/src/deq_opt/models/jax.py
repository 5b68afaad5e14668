"""LP models in JAX/Equinox: the contractive DEQ-GNN, a learned weight-tied PDHG as a DEQ, the explicit GNN.

The modules hold the parameters; their arithmetic is :mod:`deq_opt.models.layers` (as in
:mod:`deq_opt.models.torch`), with message passing summed by ``segment_sum`` on the flattened batch, so
everything runs under ``jax.jit`` on any device.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from deq_core.config import SolveOptions
from deq_core.errors import ModelFileError
from deq_core.jax import DEQ
from deq_core.jax.train import fit
from deq_core.jax.weights import load_weights, save_weights
from deq_opt.models import layers, training
from deq_opt.models.graphs import CON_FEATURES, VAR_FEATURES, GraphBatch
from deq_opt.models.spec import ModelSpec

__all__ = [
    "DEQGNN",
    "ExplicitGNN",
    "LearnedPDHG",
    "WEIGHTS",
    "build_models",
    "graph_arrays",
    "load",
    "param_count",
    "predict",
    "residual",
    "save",
    "train",
]

Graph = dict[str, jax.Array]


def graph_arrays(batch: GraphBatch, dtype: Any = jnp.float32) -> Graph:
    """The batch's arrays as JAX arrays (values in ``dtype``, indices int32)."""
    return batch.arrays(lambda a: jnp.asarray(a, dtype), lambda a: jnp.asarray(a, jnp.int32))


def _dtype(model: eqx.Module) -> Any:
    """The dtype of the model's parameters (its inputs are cast to it)."""
    return jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))[0].dtype


def _scatter(src: jax.Array, dst: jax.Array, size: int) -> jax.Array:
    """Sum the edge messages ``src`` (B, E, d) into ``size`` nodes per instance at ``dst`` (B, E)."""
    B, E, d = src.shape
    index = (dst + jnp.arange(B)[:, None] * size).reshape(-1)
    return jax.ops.segment_sum(src.reshape(B * E, d), index, num_segments=B * size).reshape(B, size, d)


def _normal(rng: np.random.Generator, *shape: int) -> jax.Array:
    """Standard normal weights scaled by ``1/sqrt(shape[-1])``, drawn on the host (no XLA compilation)."""
    return jnp.asarray(rng.standard_normal(shape) / shape[-1] ** 0.5, jnp.float32)


def _uniform(rng: np.random.Generator, fan_in: int, *shape: int) -> jax.Array:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` weights (the torch ``nn.Linear`` default), drawn on the host."""
    return jnp.asarray(rng.uniform(-1.0, 1.0, shape) / fan_in**0.5, jnp.float32)


class _MLP(eqx.Module):
    """``Linear -> tanh -> Linear`` applied to the last axis."""

    wa: jax.Array
    ba: jax.Array
    wb: jax.Array
    bb: jax.Array

    def __init__(self, n_in: int, d: int, n_out: int, rng: np.random.Generator):
        self.wa, self.ba = _uniform(rng, n_in, n_in, d), _uniform(rng, n_in, d)
        self.wb, self.bb = _uniform(rng, d, d, n_out), _uniform(rng, d, n_out)

    def __call__(self, h: jax.Array) -> jax.Array:
        """Apply to (..., n_in)."""
        return jnp.tanh(h @ self.wa + self.ba) @ self.wb + self.bb


class _Heads(eqx.Module):
    """Linear primal head (also the dynamic variable feature) and a small MLP dual head."""

    wx: jax.Array
    bx: jax.Array
    y: _MLP

    def __init__(self, d: int, rng: np.random.Generator):
        self.wx, self.bx = _normal(rng, d), jnp.zeros((), jnp.float32)
        self.y = _MLP(d, d, 1, rng)

    def primal(self, hv: jax.Array) -> jax.Array:
        """Scaled primal estimate (B, n) from variable states (B, n, d)."""
        return hv @ self.wx + self.bx

    def dual(self, hc: jax.Array) -> jax.Array:
        """Scaled dual estimate (B, m) from constraint states (B, m, d)."""
        return self.y(hc)[..., 0]


class GNNCell(eqx.Module):
    """The PDHG-like DEQ-GNN block (see :class:`deq_opt.models.torch.GNNCell`), contractive by design."""

    w1: jax.Array
    w2: jax.Array
    u: jax.Array
    u2: jax.Array
    wy: jax.Array
    step: jax.Array
    d: int = eqx.field(static=True)
    gamma: float = eqx.field(static=True)

    def __init__(self, d: int, gamma: float, rng: np.random.Generator):
        self.w1, self.w2, self.u = _normal(rng, d, d), _normal(rng, d, d), _normal(rng, d)
        self.u2, self.wy = _normal(rng, d), _normal(rng, d)
        self.step = jnp.zeros(2, jnp.float32)  # [logit of tau, cost scale a]
        self.d, self.gamma = d, gamma

    def weights(self, heads: _Heads) -> dict[str, jax.Array]:
        """The capped weights (computed once per solve, passed through the cell's arguments)."""
        tau = jax.nn.sigmoid(self.step[0])
        cell = {"w1": self.w1, "w2": self.w2, "u": self.u, "u2": self.u2, "wy": self.wy}
        return layers.gnn_weights(cell, heads.wx, tau, self.gamma) | {"tau": tau, "a": self.step[1]}

    def __call__(self, z: jax.Array, a: dict[str, Any]) -> jax.Array:
        """One application of the block to ``z = [h_v, h_c]`` (B, (n + m) d)."""
        return layers.gnn_cell(z, a, a["weights"], self.d, a["heads"].primal, _scatter)


class PDHGCell(eqx.Module):
    """The PDHG-Net-like weight-tied layer (see :class:`deq_opt.models.torch.PDHGCell`)."""

    w: jax.Array
    d: int = eqx.field(static=True)

    def __init__(self, d: int, rng: np.random.Generator):
        self.w, self.d = _normal(rng, 4, d, d), d

    def weights(self, heads: _Heads) -> tuple[jax.Array, ...]:
        """The four weights capped at spectral norm 1."""
        return tuple(layers.capped(self.w[i], 1.0) for i in range(4))

    def __call__(self, z: jax.Array, a: dict[str, Any]) -> jax.Array:
        """One primal-dual step on ``z = [X, Y]``."""
        return layers.pdhg_cell(z, a, a["weights"], self.d, _scatter)


class _Implicit(eqx.Module):
    """Encoders + a DEQ over a cell + readout heads; ``model(g, budget)`` -> scaled (x, y)."""

    enc_v: _MLP
    enc_c: _MLP
    heads: _Heads
    deq: DEQ
    d: int = eqx.field(static=True)
    n: int = eqx.field(static=True)
    m: int = eqx.field(static=True)

    def __init__(self, d: int, n: int, m: int, rng: np.random.Generator, cell: Any, options: SolveOptions):
        """Encoders and heads of width ``d`` drawn from ``rng``, then the cell ``cell(rng)`` under a DEQ."""
        self.enc_v, self.enc_c = _MLP(VAR_FEATURES, d, d, rng), _MLP(CON_FEATURES, d, d, rng)
        self.heads = _Heads(d, rng)
        self.deq = DEQ(cell(rng), options)
        self.d, self.n, self.m = d, n, m

    def _args(self, g: Graph) -> dict[str, Any]:
        return {
            "ev": self.enc_v(g["var"]),
            "ec": self.enc_c(g["con"]),
            "graph": g,
            "weights": self.deq.cell.weights(self.heads),
            "heads": self.heads,
        }

    def zero_state(self, g: Graph) -> jax.Array:
        """The all-zero state of the batch ``g``: where solves and exact-step iterations start."""
        return jnp.zeros((g["var"].shape[0], (self.n + self.m) * self.d), g["var"].dtype)

    def _readout(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        hv, hc = layers.split_state(z, self.n, self.d)
        return self.heads.primal(hv), self.heads.dual(hc)

    def _iterate_exactly(self, g: Graph, budget: jax.Array | int) -> tuple[jax.Array, dict[str, Any]]:
        """``z_t`` after exactly ``budget`` damped Picard steps from zero (``budget`` may be traced)."""
        args, z0 = self._args(g), self.zero_state(g)
        beta = self.deq.options.solver.damping
        z = jax.lax.fori_loop(0, budget, lambda _, z: (1 - beta) * z + beta * self.deq.cell(z, args), z0)
        return z, args

    def solve(self, g: Graph, z0: jax.Array | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Scaled (x, y) at the equilibrium solved from ``z0`` (zeros when omitted), and the equilibrium."""
        z = self.deq(self._args(g), self.zero_state(g) if z0 is None else z0)[0]
        return (*self._readout(z), z)

    def __call__(self, g: Graph, budget: jax.Array | int | None = None) -> tuple[jax.Array, jax.Array]:
        """Scaled (x, y): at the equilibrium (``budget=None``) or after exactly ``budget`` solver steps."""
        if budget is None:
            return self.solve(g)[:2]
        return self._readout(self._iterate_exactly(g, budget)[0])


class DEQGNN(_Implicit):
    """The weight-tied DEQ-GNN: a contractive graph-convolution block iterated to equilibrium."""

    def __init__(self, spec: ModelSpec, n: int, m: int, rng: np.random.Generator):
        d = spec.gnn_width
        super().__init__(d, n, m, rng, lambda rng: GNNCell(d, spec.gamma, rng), spec.solve_options("gnn"))


class LearnedPDHG(_Implicit):
    """The learned weight-tied PDHG (PDHG-Net-like layer) solved as a DEQ with damped Picard."""

    def __init__(self, spec: ModelSpec, n: int, m: int, rng: np.random.Generator):
        d = spec.hidden
        super().__init__(d, n, m, rng, lambda rng: PDHGCell(d, rng), spec.solve_options("pdhg"))


class ExplicitGNN(eqx.Module):
    """``depth`` untied blocks of the DEQ-GNN's architecture (no weight caps), from a zero state."""

    enc_v: _MLP
    enc_c: _MLP
    heads: _Heads
    w1: jax.Array
    w2: jax.Array
    u: jax.Array

    def __init__(self, d: int, depth: int, rng: np.random.Generator):
        self.enc_v, self.enc_c = _MLP(VAR_FEATURES, d, d, rng), _MLP(CON_FEATURES, d, d, rng)
        self.heads = _Heads(d, rng)
        self.w1, self.w2 = _normal(rng, depth, d, d), _normal(rng, depth, d, d)
        self.u = _normal(rng, depth, d)

    def __call__(self, g: Graph, budget: int | None = None) -> tuple[jax.Array, jax.Array]:
        """Scaled (x, y) after all layers (``budget`` is ignored: the depth is fixed)."""
        blocks = ((self.w1[i], self.w2[i], self.u[i]) for i in range(self.w1.shape[0]))
        heads = self.heads
        hv, hc = layers.explicit_layers(
            self.enc_v(g["var"]), self.enc_c(g["con"]), g, blocks, heads.primal, _scatter
        )
        return heads.primal(hv), heads.dual(hc)


def param_count(model: eqx.Module) -> int:
    """Number of trainable (inexact array) parameters."""
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return int(sum(leaf.size for leaf in leaves))


def build_models(spec: ModelSpec, n: int, m: int, seed: int = 0) -> dict[str, eqx.Module]:
    """``{"pdhg", "gnn", "explicit"}``; the two GNNs are sized to the learned PDHG's parameter count."""
    rng = np.random.default_rng(seed)
    return {
        "pdhg": LearnedPDHG(spec, n, m, rng),
        "gnn": DEQGNN(spec, n, m, rng),
        "explicit": ExplicitGNN(spec.explicit_width, spec.explicit_layers, rng),
    }


WEIGHTS = "weights.eqx"


def save(model: eqx.Module, path: Path) -> None:
    """Write ``model``'s array leaves to ``path`` (Equinox's serialisation)."""
    save_weights(model, path)


def load(model_class: str, spec: ModelSpec, n: int, m: int, path: Path, device: str) -> eqx.Module:
    """The ``model_class`` of ``spec`` for ``m`` x ``n`` LPs with the weights of ``path``, on ``device``."""
    rng = np.random.default_rng(0)  # a template only: every leaf is read from the file
    if model_class == "ExplicitGNN":
        like = ExplicitGNN(spec.explicit_width, spec.explicit_layers, rng)
    else:
        like = {"LearnedPDHG": LearnedPDHG, "DEQGNN": DEQGNN}[model_class](spec, n, m, rng)
    target = jax.devices("gpu" if device == "cuda" else device)[0]
    model = load_weights(like, path, ModelFileError)
    return jax.tree.map(lambda leaf: jax.device_put(leaf, target) if eqx.is_array(leaf) else leaf, model)


@functools.cache
def _adam(lr: float, steps: int) -> optax.GradientTransformation:
    """Adam with cosine decay from ``lr`` over ``steps``; one per setting, so fits share a compiled step."""
    return optax.adam(optax.cosine_decay_schedule(lr, steps))


def train(
    model: eqx.Module, data: GraphBatch, x: np.ndarray, y: np.ndarray, run: training.TrainRun, device: str
) -> tuple[eqx.Module, float]:
    """``run`` through deq-core's ``fit`` (Adam, cosine decay, numpy-drawn batches): model, last loss."""
    dtype = _dtype(model)
    arrays = (graph_arrays(data, dtype), jnp.asarray(x, dtype), jnp.asarray(y, dtype))
    warm = training.warm_cache(model, data.size, isinstance(model, _Implicit), run.warm_start)
    rng, count = np.random.default_rng(run.config.seed), min(run.batch, data.size)
    batches = (
        training.training_batch(arrays, rng.integers(0, data.size, count), warm) for _ in itertools.count()
    )
    loss = training.loss_function(run.dual_weight, warm is not None)
    model, history = fit(model, _adam(run.lr, run.config.steps), loss, batches, run.config, warm=warm)
    return model, history.losses[-1][1]


@eqx.filter_jit
def _outputs(model: eqx.Module, g: Graph, budget: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Scaled (x, y) and the per-instance residual after ``budget`` steps of an implicit model.

    ``budget`` is traced: one compilation serves every budget (and both :func:`predict` and :func:`residual`).
    """
    z, args = model._iterate_exactly(g, budget)
    res = layers.relative_residual(model.deq.cell(z, args), z)
    return (*model._readout(z), res)


@eqx.filter_jit
def _forward_full(model: eqx.Module, g: Graph) -> tuple[jax.Array, jax.Array]:
    """Scaled (x, y) at the equilibrium (implicit models) or after all layers (explicit)."""
    return model(g)


def predict(
    model: eqx.Module, data: GraphBatch, budget: int | None, device: str, chunk: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled (x, y) as numpy after exactly ``budget`` iterations (None: the equilibrium / full depth).

    Inputs are padded to whole chunks of a fixed size, so a model compiles once whatever the batch size.
    """
    xs, ys = [], []
    for part, valid in data.chunks(chunk, pad=True):
        g = graph_arrays(part, _dtype(model))
        if budget is None or not isinstance(model, _Implicit):
            px, py = _forward_full(model, g)
        else:
            px, py, _ = _outputs(model, g, jnp.asarray(budget, jnp.int32))
        xs.append(np.asarray(px, np.float64)[:valid])
        ys.append(np.asarray(py, np.float64)[:valid])
    return np.concatenate(xs), np.concatenate(ys)


def residual(model: eqx.Module, data: GraphBatch, budget: int, device: str, chunk: int = 64) -> np.ndarray:
    """Per-instance relative fixed-point residuals after ``budget`` iterations."""
    steps, dtype = jnp.asarray(budget, jnp.int32), _dtype(model)
    parts = data.chunks(chunk, pad=True)
    return np.concatenate(
        [np.asarray(_outputs(model, graph_arrays(p, dtype), steps)[2], np.float64)[:n] for p, n in parts]
    )
