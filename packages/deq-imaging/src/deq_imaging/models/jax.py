"""DEQ-HQS / DEQ-PGD in JAX/Equinox: the models of :mod:`deq_imaging.models.torch`, through deq-core.

Arrays are (N, C, H, W). The operator family is a static field (a plain hashable object), so models work
under ``jax.jit``; the denoiser's ``eqx.nn.Conv2d`` layers hold the parameters and run in NHWC layout.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from deq_core.jax import DEQ
from deq_core.jax.analysis import iterate
from deq_core.jax.regularizers import SpectralNorm, spectral_normalize
from deq_imaging.models import family
from deq_imaging.operators import jax as ops


class OperatorFamily(family.OperatorFamily):
    """The JAX operators of a task; ``||A||`` comes from the numpy reference, since a family can first be
    used while a JAX function is being traced, where the operator's own power iteration cannot run."""

    operators = ops

    def _norm2(self, op: Any, shape: tuple[int, int]) -> float:
        return float(self.spec.reference(shape).norm()) ** 2

    def zeros(self, y: jax.Array, image_shape: tuple[int, int]) -> jax.Array:
        """Zero images (N, C, *image_shape) in ``y``'s dtype."""
        return jnp.zeros((*y.shape[:-2], *image_shape), y.dtype)


class Denoiser(eqx.Module):
    """Residual CNN ``D(x, sigma) = x - net([x, sigma])``: ``depth`` 3x3 convs of ``features`` channels."""

    layers: tuple

    def __init__(self, key: jax.Array, channels: int = 1, features: int = 32, depth: int = 6, spectral=False):
        """Build the network (optionally spectrally normalised); the last layer starts near zero."""
        if depth < 2:
            raise ValueError(f"Denoiser depth must be >= 2, got {depth}")
        keys = jax.random.split(key, depth + 1)
        widths = [channels + 1] + [features] * (depth - 1) + [channels]
        layers = [eqx.nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, key=keys[i]) for i in range(depth)]
        last = layers[-1]
        last = eqx.tree_at(lambda c: (c.weight, c.bias), last, (last.weight * 0.1, jnp.zeros_like(last.bias)))
        layers = tuple(layers[:-1]) + (last,)
        self.layers = spectral_normalize(layers, keys[-1]) if spectral else layers

    def _net(self, h: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            h = _conv_nhwc(layer, h)
            if i < len(self.layers) - 1:
                h = jax.nn.relu(h)
        return h

    def __call__(self, x: jax.Array, sigma: jax.Array) -> jax.Array:
        """Denoise ``x`` (N, C, H, W) at noise level ``sigma`` (a scalar).

        The network runs in its weights' dtype whatever ``x``'s is (e.g. float64 data under
        ``jax_enable_x64``), and the result comes back in ``x``'s dtype.
        """
        dtype = jax.tree_util.tree_leaves(eqx.filter(self.layers, eqx.is_inexact_array))[0].dtype
        level = jnp.broadcast_to(sigma.astype(dtype), (x.shape[0], 1, *x.shape[2:]))
        h = jnp.concatenate([x.astype(dtype), level], axis=1).transpose(0, 2, 3, 1)
        return x - self._net(h).transpose(0, 3, 1, 2).astype(x.dtype)


def _conv_nhwc(layer: eqx.Module, h: jax.Array) -> jax.Array:
    """The 3x3 "same" convolution of ``layer`` (an ``eqx.nn.Conv2d``, or its ``SpectralNorm``) on NHWC ``h``.

    The layer keeps its parameters; only the layout differs: inside a loop (the DEQ's ``while_loop``)
    XLA:CPU runs NCHW/OIHW convolutions about 20x slower than NHWC/HWIO ones, so the network runs NHWC.
    """
    if isinstance(layer, SpectralNorm):
        layer = layer.normalized()
    kernel = layer.weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    out = jax.lax.conv_general_dilated(h, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out + layer.bias.reshape(1, 1, 1, -1)


def conjugate_gradient(op: Any, y: jax.Array, z: jax.Array, mu: jax.Array, steps: int) -> jax.Array:
    """``steps`` CG iterations on ``(A*A + mu I) x = A*y + mu z`` from ``x = z``, per image."""
    dims = tuple(range(1, z.ndim))
    tiny = jnp.finfo(z.dtype).tiny
    normal = lambda v: op.adjoint(op.forward(v)) + mu * v  # noqa: E731
    x = z
    r = op.adjoint(y) + mu * z - normal(x)
    p, rs = r, jnp.sum(r * r, dims, keepdims=True)
    for _ in range(steps):
        ap = normal(p)
        alpha = rs / jnp.maximum(jnp.sum(p * ap, dims, keepdims=True), tiny)
        x, r = x + alpha * p, r - alpha * ap
        rs_new = jnp.sum(r * r, dims, keepdims=True)
        p, rs = r + rs_new / jnp.maximum(rs, tiny) * p, rs_new
    return x


def richardson(op: Any, y: jax.Array, z: jax.Array, mu: jax.Array, norm2: float, steps: int) -> jax.Array:
    """``steps`` fixed-step gradient iterations on ``(A*A + mu I) x = A*y + mu z`` from ``x = z`` (step
    ``1 / (||A||^2 + mu)``): a linear, nonexpansive map of ``z``, unlike CG, whose step size depends on it."""
    eta = 1.0 / (norm2 + mu)
    b = op.adjoint(y) + mu * z
    x = z
    for _ in range(steps):
        x = x - eta * (op.adjoint(op.forward(x)) + mu * x - b)
    return x


class HQSCell(eqx.Module):
    """Half-quadratic splitting: ``z <- D(prox_data(z; mu), sigma)`` with learnable ``mu`` and ``sigma``."""

    denoiser: Denoiser
    log_mu: jax.Array
    log_sigma: jax.Array
    family: OperatorFamily = eqx.field(static=True)
    cg_steps: int = eqx.field(static=True)
    inner: str = eqx.field(static=True)
    start: str = eqx.field(static=True)

    def __init__(
        self,
        family: OperatorFamily,
        denoiser: Denoiser,
        mu0: float,
        sigma0: float,
        cg_steps: int = 0,
        inner: str = "cg",
        start: str = "direct",
    ):
        """``cg_steps`` > 0 replaces the closed-form proximal step by that many ``inner`` steps (``cg`` or
        ``richardson``)."""
        self.family, self.denoiser, self.cg_steps, self.inner = family, denoiser, cg_steps, inner
        self.start = start
        self.log_mu = jnp.asarray(math.log(mu0), jnp.float32)
        self.log_sigma = jnp.asarray(math.log(sigma0), jnp.float32)

    def init(self, y: jax.Array) -> jax.Array:
        """The starting image of the iteration for measurements ``y`` (``direct`` or ``zero``)."""
        return self.family.init(y, self.start)

    def data_step(self, z: jax.Array, y: jax.Array) -> jax.Array:
        """``(A*A + mu I)^-1 (A*y + mu z)`` (exact, or by CG or Richardson steps)."""
        op = self.family.get(y.shape)
        norm2 = self.family.norm2(y.shape)
        mu = jnp.exp(self.log_mu).astype(z.dtype) * norm2
        if self.cg_steps == 0 and hasattr(op, "data_prox"):
            return op.data_prox(y, z, jnp.broadcast_to(mu, (z.shape[0],)))
        if self.inner == "richardson":
            return richardson(op, y, z, mu, norm2, max(self.cg_steps, 1))
        return conjugate_gradient(op, y, z, mu, max(self.cg_steps, 1))

    def __call__(self, z: jax.Array, y: jax.Array) -> jax.Array:
        """One HQS iteration."""
        return self.denoiser(self.data_step(z, y), jnp.exp(self.log_sigma))


class PGDCell(eqx.Module):
    """Proximal gradient: ``z <- D(z - eta A*(A z - y), sigma)`` with learnable ``eta`` and ``sigma``."""

    denoiser: Denoiser
    log_eta: jax.Array
    log_sigma: jax.Array
    family: OperatorFamily = eqx.field(static=True)
    start: str = eqx.field(static=True)

    def __init__(
        self, family: OperatorFamily, denoiser: Denoiser, eta0: float, sigma0: float, start: str = "direct"
    ):
        """``eta0`` is the initial step in units of ``1 / ||A||^2``."""
        self.family, self.denoiser, self.start = family, denoiser, start
        self.log_eta = jnp.asarray(math.log(eta0), jnp.float32)
        self.log_sigma = jnp.asarray(math.log(sigma0), jnp.float32)

    def init(self, y: jax.Array) -> jax.Array:
        """The starting image of the iteration for measurements ``y`` (``direct`` or ``zero``)."""
        return self.family.init(y, self.start)

    def data_step(self, z: jax.Array, y: jax.Array) -> jax.Array:
        """One gradient step on ``||A z - y||^2 / 2``."""
        op = self.family.get(y.shape)
        eta = jnp.exp(self.log_eta).astype(z.dtype) / self.family.norm2(y.shape)
        return z - eta * op.adjoint(op.forward(z) - y)

    def __call__(self, z: jax.Array, y: jax.Array) -> jax.Array:
        """One PGD iteration."""
        return self.denoiser(self.data_step(z, y), jnp.exp(self.log_sigma))


class Implicit(eqx.Module):
    """The DEQ of a cell, started from ``cell.init(y)``; ``budget(y, t)`` is the t-th iterate."""

    deq: DEQ

    def __init__(self, cell: eqx.Module, **solve_options: Any):
        """``solve_options`` as for :class:`deq_core.jax.DEQ` (training solve)."""
        self.deq = DEQ(cell, **solve_options)

    def __call__(self, y: jax.Array, z0: jax.Array | None = None) -> jax.Array:
        """The equilibrium reconstruction (from ``z0``, e.g. a cached iterate, or the cell's start)."""
        return self.deq(y, self.deq.cell.init(y) if z0 is None else z0)[0]

    def budget(self, y: jax.Array, steps: int, z0: jax.Array | None = None) -> jax.Array:
        """The reconstruction after exactly ``steps`` solver iterations from ``z0`` (default: the start)."""
        z0 = self.deq.cell.init(y) if z0 is None else z0
        return iterate(self.deq.cell, z0, y, steps, self.deq.options.solver)


class Explicit(eqx.Module):
    """The same cell applied once to the direct reconstruction: a one-shot network of the same size."""

    cell: eqx.Module

    def __call__(self, y: jax.Array) -> jax.Array:
        """``cell(direct(y), y)``."""
        return self.cell(self.cell.family.direct(y), y)


class Unrolled(eqx.Module):
    """``K`` cells with their own weights applied in sequence from the first cell's start: the untied
    (unrolled) counterpart of the DEQ, with ``K`` times its parameters, trained by backpropagation."""

    cells: tuple

    def __init__(self, cells: list[eqx.Module]):
        """Chain ``cells`` (at least one)."""
        if not cells:
            raise ValueError("Unrolled needs at least one cell")
        self.cells = tuple(cells)

    def __call__(self, y: jax.Array) -> jax.Array:
        """``cell_K(... cell_1(init(y), y) ..., y)``."""
        z = self.cells[0].init(y)
        for cell in self.cells:
            z = cell(z, y)
        return z


def build_cell(spec: Any, cfg: Any, key: jax.Array, channels: int = 1) -> eqx.Module:
    """The cell ``cfg`` describes (an :class:`~deq_imaging.models.config.ImagingConfig`) for ``spec``."""
    operators = OperatorFamily(spec)
    denoiser = Denoiser(key, channels, cfg.features, cfg.depth, cfg.spectral_norm)
    if cfg.model == "pgd":
        return PGDCell(operators, denoiser, cfg.eta0, cfg.sigma0, cfg.start)
    steps, inner = family.data_step_choice(spec.kind, cfg.data_step, cfg.cg_steps)
    return HQSCell(operators, denoiser, cfg.mu0, cfg.sigma0, steps, inner, cfg.start)


def count_parameters(model: eqx.Module) -> int:
    """Number of trainable scalars (spectral-norm state excluded)."""
    from deq_core.jax.regularizers import trainable

    arrays = eqx.filter(model, trainable(model))
    return sum(int(a.size) for a in jax.tree.leaves(arrays))
