"""JAX/Equinox FNOs: the modules holding the parameters, whose math is :mod:`deq_pde.models.fourier`.

Mirrors :mod:`deq_pde.models.torch`: models map a raw grid input ``(B, n, n)`` to the raw solution
``(B, n, n)``; normalisation constants are fitted on the training set and never trained. Everything runs
under ``jax.jit``; training goes through :func:`deq_core.jax.train.fit`.
"""

from __future__ import annotations

import functools
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
from deq_core.jax.analysis import iterate_exactly
from deq_core.jax.train import fit
from deq_core.jax.weights import load_weights
from deq_core.jax.weights import save_weights as save_weights
from deq_pde.models import fourier
from deq_pde.models.fourier import POWER_ITERS
from deq_pde.models.fourier import relative_l2 as relative_l2
from deq_pde.models.schedule import fit_epochs, permutations
from deq_pde.models.settings import ModelSettings, TrainSettings, grid_channels

_gelu = lambda x: jax.nn.gelu(x, approximate=False)  # noqa: E731 (torch's exact GELU)


class Pointwise(eqx.Module):
    """A 1x1 convolution ``(B, Cin, H, W) -> (B, Cout, H, W)`` initialised like ``torch.nn.Conv2d``."""

    weight: jax.Array
    bias: jax.Array

    def __init__(self, fan_in: int, fan_out: int, rng: np.random.Generator):
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = jnp.asarray(rng.uniform(-bound, bound, (fan_out, fan_in)), dtype=jnp.float32)
        self.bias = jnp.asarray(rng.uniform(-bound, bound, (fan_out,)), dtype=jnp.float32)

    def __call__(self, z: jax.Array, bias: bool = True) -> jax.Array:
        """Apply to a batch of feature maps (without the bias when ``bias`` is False)."""
        out = jnp.einsum("oi,bihw->bohw", self.weight, z)
        return out + self.bias[:, None, None] if bias else out


class SpectralConv2d(eqx.Module):
    """Fourier-space linear map on the lowest ``modes`` x ``modes`` frequencies (two corners of rfft2)."""

    weight: jax.Array
    modes: int = eqx.field(static=True)

    def __init__(self, width: int, modes: int, rng: np.random.Generator):
        scale = 1.0 / (width * width)
        self.weight = jnp.asarray(scale * rng.random((2, width, width, modes, modes, 2)), dtype=jnp.float32)
        self.modes = modes

    def complex_weight(self) -> jax.Array:
        """The weight as complex (2, in, out, modes, modes)."""
        return jax.lax.complex(self.weight[..., 0], self.weight[..., 1])

    def __call__(self, z: jax.Array) -> jax.Array:
        """Apply to ``z`` (B, C, H, W)."""
        return fourier.spectral_conv(z, self.complex_weight(), self.modes)


class FourierLayer(eqx.Module):
    """``gelu(s (K z + W z) + x)``: spectral plus pointwise conv, optional injection and contraction.

    See :mod:`deq_pde.models.fourier` for the contraction ``c``; ``None`` (explicit FNO layers) leaves the
    layer unconstrained.
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
        return fourier.mode_matrices(self.spectral.complex_weight(), self.pointwise.weight)

    def operator_norm(self, iters: int = POWER_ITERS) -> jax.Array:
        """Spectral norm of ``z -> K z + W z`` (bias excluded) by power iteration on every mode matrix."""
        return fourier.operator_norm(self.mode_matrices(), jax.lax.stop_gradient, iters)

    def scale(self) -> jax.Array:
        """``min(1, c / ||K + W||)``: the factor that makes the layer a contraction (1 without ``c``)."""
        if self.contraction is None:
            return jnp.ones((), jnp.float32)
        return fourier.contraction_scale(self.contraction, self.operator_norm())

    def __call__(self, z: jax.Array, args: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
        """An explicit layer ``gelu(K z + W z)``, or with ``args = (x, scale)`` one FNO-DEQ cell step."""
        linear = self.spectral(z) + self.pointwise(z)
        return fourier.layer_output(linear, args, self.pointwise.bias, _gelu)


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
        scales, grid = jax.lax.stop_gradient((self.scales, self.grid))
        return self.lift(fourier.lift_input(a, scales, grid))

    def decode(self, z: jax.Array) -> jax.Array:
        """(B, width, n, n) features -> (B, n, n) raw solution."""
        u = self.out(_gelu(self.hidden(z)))[:, 0]
        return fourier.denormalize(u, jax.lax.stop_gradient(self.scales))


class FNODEQ(eqx.Module):
    """FNO-DEQ: lift, the fixed point of one weight-tied Fourier layer with input injection, projection."""

    codec: Codec
    deq: DEQ

    def __init__(self, n: int, settings: ModelSettings, rng: np.random.Generator):
        self.codec = Codec(n, settings, rng)
        self.deq = DEQ(
            FourierLayer(settings.width, settings.modes, rng, settings.contraction), settings.solve
        )

    def __call__(self, a: jax.Array, z0: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """``(u, z)``: the prediction and the hidden state after the training budget from ``z0``."""
        return fourier.equilibrium(self, a, z0)

    def inject(self, a: jax.Array) -> jax.Array:
        """The injection ``K v + W v`` of the lifted input ``v`` (bias excluded: the cell adds it)."""
        v = self.codec.encode(a)
        return self.deq.cell.spectral(v) + self.deq.cell.pointwise(v, bias=False)

    def budget(self, a: jax.Array, steps: int) -> jax.Array:
        """The prediction after exactly ``steps`` iterations from zero (test-time compute budget)."""
        return fourier.budget(self, a, steps, iterate_exactly)


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
        return fourier.explicit_forward(self.codec, self.layers, a)


def _constants(model: FNODEQ | FNO) -> tuple[jax.Array, jax.Array]:
    """The arrays that are fitted, not trained: the grid channels and the normalisation."""
    return model.codec.grid, model.codec.scales


def count_params(model: eqx.Module) -> int:
    """Number of trainable parameters (normalisation constants and the grid excluded)."""
    arrays = eqx.tree_at(_constants, model, replace=(None, None))
    return sum(int(a.size) for a in jax.tree.leaves(eqx.filter(arrays, eqx.is_array)))


@functools.lru_cache(maxsize=8)
def _optimizer(settings: TrainSettings, steps: int) -> optax.GradientTransformation:
    """AdamW with cosine decay on the trained arrays; the constants of :func:`_constants` stay as they are.

    Cached: the same optimizer lets ``fit`` reuse its compiled step across runs of the same settings.
    """
    adamw = optax.adamw(optax.cosine_decay_schedule(settings.lr, steps), weight_decay=settings.weight_decay)

    def labels(params: Any) -> Any:
        names = jax.tree.map(lambda _: "trained", params)
        return eqx.tree_at(_constants, names, replace=("fixed", "fixed"))

    return optax.partition({"trained": adamw, "fixed": optax.set_to_zero()}, labels)


def train(
    model: FNODEQ | FNO,
    inputs: jax.Array,
    targets: jax.Array,
    settings: TrainSettings,
    seed: int,
    **checkpoints,
) -> tuple[FNODEQ | FNO, list[float]]:
    """Minimise the mean relative L2 error with AdamW and cosine decay; returns the model and epoch losses.

    An FNO-DEQ warm-starts each training sample from its last hidden state. ``checkpoints``
    (``checkpoint_dir``, ``checkpoint_every``, ``stop_after``) are those of
    :func:`~deq_pde.models.schedule.train_config`: a run cut short resumes from its last checkpoint.
    """
    scales = fourier.codec_scales(inputs, targets).astype(model.codec.scales.dtype)
    model = eqx.tree_at(lambda m: m.codec.scales, model, scales)
    n, float_type = inputs.shape[0], jnp.zeros(()).dtype.type
    optimizer, orders = _optimizer(settings, settings.steps(n)), lambda: permutations(n, seed)
    (model, _), losses = fit_epochs(
        fit, model, optimizer, (inputs, targets), settings, seed, orders, float_type, checkpoints
    )
    return model, losses


def _budget(model: FNODEQ, a: jax.Array, steps: int) -> jax.Array:
    return model.budget(a, steps)


def budget_fn(model: FNODEQ) -> eqx.Partial:
    """``(a, steps) -> prediction`` for :func:`deq_core.jax.analysis.scaling_analysis` (weights traced)."""
    return eqx.Partial(_budget, model)


@eqx.filter_jit
def _solution(model: eqx.Module, a: jax.Array) -> jax.Array:
    return fourier.solution(model(a))


@eqx.filter_jit
def _budget_jit(model: FNODEQ, a: jax.Array, steps: int) -> jax.Array:
    return model.budget(a, steps)  # steps, a Python int, is static: one compile per budget and shape


def predict(model: eqx.Module, inputs: jax.Array, batch: int = 64, steps: int | None = None) -> jax.Array:
    """Batched jitted prediction of ``model`` (``u`` of an FNO-DEQ), or of ``model.budget(., steps)``."""
    chunks = (inputs[i : i + batch] for i in range(0, inputs.shape[0], batch))
    if steps is None:
        return jnp.concatenate([_solution(model, a) for a in chunks])
    return jnp.concatenate([_budget_jit(model, a, steps) for a in chunks])


WEIGHTS = "weights.eqx"
"""The weights file of a model folder (:mod:`deq_pde.models.files`)."""


def read(path: Path, n: int, settings: ModelSettings, depth: int | None, device: str | None) -> eqx.Module:
    """The FNO-DEQ (``depth`` None) or FNO of the Equinox leaves file ``path``, its arrays on ``device``."""
    rng = np.random.default_rng(0)  # a template only: every leaf is read from the file
    like = FNODEQ(n, settings, rng) if depth is None else FNO(n, settings, rng, depth)
    target = jax.devices("gpu" if device == "cuda" else (device or "cpu"))[0]
    model = load_weights(like, path, ModelFileError)
    return jax.tree.map(lambda leaf: jax.device_put(leaf, target) if eqx.is_array(leaf) else leaf, model)


def apply(model: eqx.Module, inputs, steps: int | None) -> np.ndarray:
    """:func:`predict` of numpy (or JAX) ``inputs`` on the model's device, as numpy."""
    target = next(iter(model.codec.grid.devices()))
    return np.asarray(
        predict(model, jax.device_put(jnp.asarray(inputs, dtype=jnp.float32), target), steps=steps)
    )
