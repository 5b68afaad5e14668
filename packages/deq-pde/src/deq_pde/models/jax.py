"""JAX/Equinox FNOs: spectral conv (rfft2), FNO-DEQ through ``deq_core.jax.DEQ``, explicit FNO, training.

Mirrors :mod:`deq_pde.models.torch`: models map a raw grid input ``(B, n, n)`` to the raw solution
``(B, n, n)``; normalisation constants are fitted on the training set. Everything runs under ``jax.jit``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from deq_core.config import Phantom
from deq_core.jax import DEQ
from deq_core.jax.analysis import iterate
from deq_pde.models.settings import ModelSettings, TrainSettings, grid_channels

POWER_ITERS = 10


class Pointwise(eqx.Module):
    """A 1x1 convolution ``(B, Cin, H, W) -> (B, Cout, H, W)`` initialised like ``torch.nn.Conv2d``."""

    weight: jax.Array
    bias: jax.Array

    def __init__(self, fan_in: int, fan_out: int, rng: np.random.Generator):
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = jnp.asarray(rng.uniform(-bound, bound, (fan_out, fan_in)), dtype=jnp.float32)
        self.bias = jnp.asarray(rng.uniform(-bound, bound, (fan_out,)), dtype=jnp.float32)

    def __call__(self, z: jax.Array) -> jax.Array:
        """Apply to a batch of feature maps."""
        return jnp.einsum("oi,bihw->bohw", self.weight, z) + self.bias[:, None, None]


class SpectralConv2d(eqx.Module):
    """Fourier-space linear map on the lowest ``modes`` x ``modes`` frequencies (two corners of rfft2)."""

    weight: jax.Array
    modes: int = eqx.field(static=True)

    def __init__(self, width: int, modes: int, rng: np.random.Generator):
        scale = 1.0 / (width * width)
        self.weight = jnp.asarray(scale * rng.random((2, width, width, modes, modes, 2)), dtype=jnp.float32)
        self.modes = modes

    def __call__(self, z: jax.Array) -> jax.Array:
        """Apply to ``z`` (B, C, H, W)."""
        b, c, h, w = z.shape
        zf = jnp.fft.rfft2(z)
        m1, m2 = min(self.modes, h // 2), min(self.modes, w // 2 + 1)
        weight = jax.lax.complex(self.weight[..., 0], self.weight[..., 1])
        top = jnp.einsum("bixy,ioxy->boxy", zf[:, :, :m1, :m2], weight[0, :, :, :m1, :m2])
        bottom = jnp.einsum("bixy,ioxy->boxy", zf[:, :, h - m1 :, :m2], weight[1, :, :, :m1, :m2])
        middle = jnp.zeros((b, c, h - 2 * m1, m2), zf.dtype)
        left = jnp.concatenate([top, middle, bottom], axis=2)
        out = jnp.concatenate([left, jnp.zeros((b, c, h, zf.shape[-1] - m2), zf.dtype)], axis=3)
        return jnp.fft.irfft2(out, s=(h, w)).astype(z.dtype)


class FourierLayer(eqx.Module):
    """``gelu(s (K z + W z) + x)``: spectral plus pointwise conv, optional injection ``x`` and contraction.

    With ``contraction = c`` the linear part is rescaled by ``s = min(1, c / ||K + W||)``, where the operator
    norm is the largest singular value over the Fourier modes of ``K_mode + W`` (and of ``W`` alone).
    As GELU is 1.13-Lipschitz, ``c < 0.88`` makes ``z -> f(z, x)`` a contraction: iterates from any start
    converge. ``contraction = None`` (explicit FNO layers) leaves the layer unconstrained.
    """

    spectral: SpectralConv2d
    pointwise: Pointwise
    contraction: float | None = eqx.field(static=True)

    def __init__(self, width: int, modes: int, rng: np.random.Generator, contraction: float | None = None):
        self.spectral = SpectralConv2d(width, modes, rng)
        self.pointwise = Pointwise(width, width, rng)
        self.contraction = contraction

    def mode_matrices(self) -> jax.Array:
        """The complex (modes + 1, out, in) matrices ``K_mode + W`` per kept Fourier mode, and ``W``."""
        weight = jax.lax.complex(self.spectral.weight[..., 0], self.spectral.weight[..., 1])
        modes = jnp.transpose(weight, (0, 3, 4, 2, 1)).reshape(-1, weight.shape[2], weight.shape[1])
        pointwise = self.pointwise.weight.astype(modes.dtype)
        return jnp.concatenate([modes + pointwise, pointwise[None]])

    def operator_norm(self, iters: int = POWER_ITERS) -> jax.Array:
        """Spectral norm of ``z -> K z + W z`` (bias excluded): power iteration on every mode matrix.

        ``iters`` rounds on ``M^H M`` from a fixed start (no gradient), then ``max ||M v||`` (differentiable).
        """
        matrices = self.mode_matrices()
        size = matrices.shape[-1]
        start = (1.5 + jnp.cos(1.7 * jnp.arange(size))).astype(matrices.dtype)
        v = jnp.broadcast_to(start, (matrices.shape[0], size))[..., None]
        fixed = jax.lax.stop_gradient(matrices)
        for _ in range(iters):
            v = jnp.conj(jnp.swapaxes(fixed, 1, 2)) @ (fixed @ v)
            v = v / jnp.linalg.norm(v, axis=1, keepdims=True)
        return jnp.linalg.norm(matrices @ jax.lax.stop_gradient(v), axis=1).max()

    def scale(self) -> jax.Array:
        """``min(1, c / ||K + W||)``: the factor that makes the layer a contraction (1 without ``c``)."""
        if self.contraction is None:
            return jnp.ones((), jnp.float32)
        return jnp.minimum(self.contraction / self.operator_norm(), 1.0)

    def __call__(self, z: jax.Array, args: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
        """An explicit layer ``gelu(K z + W z)``, or with ``args = (x, scale)`` one FNO-DEQ cell step."""
        out = self.spectral(z) + self.pointwise(z)
        if args is None:
            return jax.nn.gelu(out, approximate=False)
        x, scale = args
        bias = self.pointwise.bias[:, None, None]
        return jax.nn.gelu(scale * (out - bias) + bias + x, approximate=False)


class Codec(eqx.Module):
    """Input normalisation, grid channels and lift to ``width``; projection and output de-normalisation."""

    lift: Pointwise
    hidden: Pointwise
    out: Pointwise
    grid: jax.Array
    scales: jax.Array

    def __init__(self, n: int, settings: ModelSettings, rng: np.random.Generator):
        self.lift = Pointwise(3, settings.width, rng)
        self.hidden = Pointwise(settings.width, settings.projection, rng)
        self.out = Pointwise(settings.projection, 1, rng)
        self.grid = jnp.asarray(grid_channels(n), dtype=jnp.float32)
        self.scales = jnp.array([0.0, 1.0, 0.0, 1.0], dtype=jnp.float32)

    def encode(self, a: jax.Array) -> jax.Array:
        """(B, n, n) raw input -> (B, width, n, n) lifted features."""
        if a.ndim != 3 or a.shape[1:] != self.grid.shape[1:]:
            raise ValueError(
                f"input must have shape (B, {self.grid.shape[1]}, {self.grid.shape[2]}), got {a.shape}"
            )
        scales = jax.lax.stop_gradient(self.scales)
        a = ((a - scales[0]) / scales[1]).astype(jnp.float32)[:, None]
        grid = jnp.broadcast_to(jax.lax.stop_gradient(self.grid), (a.shape[0], *self.grid.shape))
        return self.lift(jnp.concatenate([a, grid], axis=1))

    def decode(self, z: jax.Array) -> jax.Array:
        """(B, width, n, n) features -> (B, n, n) raw solution."""
        scales = jax.lax.stop_gradient(self.scales)
        u = self.out(jax.nn.gelu(self.hidden(z), approximate=False))[:, 0]
        return u * scales[3] + scales[2]


class FNODEQ(eqx.Module):
    """FNO-DEQ: lift, the fixed point of one weight-tied Fourier layer with input injection, projection.

    The lifted input ``v`` is injected through the layer's own linear part, ``x = K v + W v``, so the cell is
    ``z -> gelu(s (K z + W z) + K v + W v + b)``: its first iterate from ``z = 0`` is the explicit depth-1 FNO
    layer ``gelu(K v + W v + b)`` with the same weights; further iterations refine it (no extra parameters).
    """

    codec: Codec
    deq: DEQ

    def __init__(self, n: int, settings: ModelSettings, rng: np.random.Generator):
        self.codec = Codec(n, settings, rng)
        self.deq = DEQ(
            FourierLayer(settings.width, settings.modes, rng, settings.contraction),
            solver=settings.solver,
            backward=Phantom(settings.phantom_steps, settings.phantom_tau),
            tol=0.0,
            max_iter=settings.train_iters,
        )

    def __call__(self, a: jax.Array, z0: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """``(u, z)``: the prediction and the hidden state after the training budget from ``z0``."""
        x = self.inject(a)
        z, _ = self.deq((x, self.deq.cell.scale()), jnp.zeros_like(x) if z0 is None else z0)
        return self.codec.decode(z), z

    def inject(self, a: jax.Array) -> jax.Array:
        """The injection ``K v + W v`` of the lifted input ``v`` (bias excluded: the cell adds it)."""
        v = self.codec.encode(a)
        cell = self.deq.cell
        return cell.spectral(v) + jnp.einsum("oi,bihw->bohw", cell.pointwise.weight, v)

    def budget(self, a: jax.Array, steps: int) -> jax.Array:
        """The prediction after exactly ``steps`` iterations from zero (test-time compute budget)."""
        x = self.inject(a)
        z = iterate(
            self.deq.cell, jnp.zeros_like(x), (x, self.deq.cell.scale()), steps, self.deq.options.solver
        )
        return self.codec.decode(z)


class FNO(eqx.Module):
    """Explicit FNO: lift, ``depth`` Fourier layers with their own weights, projection."""

    codec: Codec
    layers: tuple[FourierLayer, ...]

    def __init__(self, n: int, settings: ModelSettings, rng: np.random.Generator, depth: int = 1):
        if depth < 1:
            raise ValueError(f"FNO depth must be >= 1, got {depth}")
        self.codec = Codec(n, settings, rng)
        self.layers = tuple(FourierLayer(settings.width, settings.modes, rng) for _ in range(depth))

    def __call__(self, a: jax.Array) -> jax.Array:
        """The prediction for a batch of raw inputs."""
        z = self.codec.encode(a)
        for layer in self.layers:
            z = layer(z)
        return self.codec.decode(z)


def count_params(model: eqx.Module) -> int:
    """Number of trainable parameters (normalisation constants and the grid excluded)."""
    leaves = jax.tree.leaves(eqx.filter(_trainable(model), eqx.is_array))
    return sum(int(a.size) for a in leaves)


def _trainable(model: eqx.Module) -> eqx.Module:
    """``model`` with its constant arrays (grid, normalisation) replaced by None."""
    return eqx.tree_at(lambda m: (m.codec.grid, m.codec.scales), model, replace=(None, None))


def relative_l2(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Per-sample ``||pred - target|| / ||target||`` over the grid."""
    diff = jnp.linalg.norm((pred - target).reshape(pred.shape[0], -1), axis=1)
    return diff / jnp.linalg.norm(target.reshape(target.shape[0], -1), axis=1)


def _implicit_loss(model: FNODEQ, a: jax.Array, u: jax.Array, z0: jax.Array) -> tuple[jax.Array, jax.Array]:
    pred, z = model(a, z0)
    return relative_l2(pred, u).mean(), jax.lax.stop_gradient(z)


def _explicit_loss(model: FNO, a: jax.Array, u: jax.Array, z0: None) -> tuple[jax.Array, None]:
    return relative_l2(model(a), u).mean(), None


_store = jax.jit(lambda cache, index, z: cache.at[index].set(z), donate_argnums=0)


def train(
    model: FNODEQ | FNO,
    inputs: jax.Array,
    targets: jax.Array,
    settings: TrainSettings,
    seed: int,
    desc: str = "train",
) -> tuple[FNODEQ | FNO, list[float]]:
    """Minimise the mean relative L2 error; returns the trained model and the mean loss per epoch.

    An FNO-DEQ is trained with warm starts: each training sample's last hidden state is its next starting
    point, so a few solver iterations plus the phantom gradient track the moving fixed point.
    """
    if inputs.shape != targets.shape:
        raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} must match")
    stats = jnp.stack([inputs.mean(), inputs.std(ddof=1), targets.mean(), targets.std(ddof=1)])
    model = eqx.tree_at(lambda m: m.codec.scales, model, stats.astype(jnp.float32))
    n = inputs.shape[0]
    steps = settings.steps(n)
    schedule = optax.cosine_decay_schedule(settings.lr, steps)
    optimizer = optax.adamw(schedule, weight_decay=settings.weight_decay)
    params, static = eqx.partition(model, eqx.is_array)
    frozen = _trainable(params)
    opt_state = optimizer.init(frozen)
    implicit = isinstance(model, FNODEQ)
    loss_fn = _implicit_loss if implicit else _explicit_loss
    cache = (
        jnp.zeros((n, model.codec.lift.weight.shape[0], *inputs.shape[1:]), jnp.float32) if implicit else None
    )

    @eqx.filter_jit
    def step(model, opt_state, a, u, z0):
        (loss, z), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model, a, u, z0)
        grads = _trainable(grads)
        updates, opt_state = optimizer.update(grads, opt_state, _trainable(eqx.filter(model, eqx.is_array)))
        return eqx.apply_updates(model, updates), opt_state, loss, z

    rng = np.random.default_rng(seed)
    history: list[float] = []
    with tqdm(total=steps, desc=desc, leave=False) as bar:
        for _ in range(settings.epochs):
            order = rng.permutation(n)
            total = jnp.zeros(())
            for start in range(0, n, settings.batch):
                index = jnp.asarray(order[start : start + settings.batch])
                z0 = cache[index] if implicit else None
                model, opt_state, loss, z = step(model, opt_state, inputs[index], targets[index], z0)
                if implicit:
                    cache = _store(cache, index, z)
                total = total + loss * index.shape[0]
                bar.update()
            history.append(float(total) / n)
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    return model, history


def _budget(model: FNODEQ, a: jax.Array, steps: int) -> jax.Array:
    return model.budget(a, steps)


def budget_fn(model: FNODEQ) -> eqx.Partial:
    """``(a, steps) -> prediction`` for :func:`deq_core.jax.analysis.scaling_analysis` (weights traced)."""
    return eqx.Partial(_budget, model)


def predict(model: eqx.Module, inputs: jax.Array, batch: int = 64, steps: int | None = None) -> jax.Array:
    """Batched jitted prediction of ``model`` (or of ``model.budget(., steps)`` when ``steps`` is given).

    An FNO-DEQ returns ``(u, z)``; the prediction is ``u``.
    """
    if steps is None:
        fn = eqx.filter_jit(lambda m, a: (lambda out: out[0] if isinstance(out, tuple) else out)(m(a)))
    else:
        fn = eqx.filter_jit(lambda m, a: m.budget(a, steps))
    parts = [fn(model, inputs[i : i + batch]) for i in range(0, inputs.shape[0], batch)]
    return jnp.concatenate(parts)
