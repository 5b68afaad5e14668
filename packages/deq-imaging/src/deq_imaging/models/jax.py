"""DEQ-HQS / DEQ-PGD in JAX/Equinox: the shared cells and networks as ``eqx.Module``s, and the JAX denoiser.

The math of every class is in :mod:`deq_imaging.models.cells` and :mod:`deq_imaging.models.networks`; here
they get their Equinox fields (``_Jax``). Arrays are (N, C, H, W). The operator family is a static field (a
plain hashable object), so models work under ``jax.jit``; the denoiser's ``eqx.nn.Conv2d`` layers hold the
parameters and run in NHWC layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from deq_core.errors import ModelFileError
from deq_core.jax import DEQ
from deq_core.jax.analysis import iterate_exactly
from deq_core.jax.regularizers import SpectralNorm, spectral_normalize, trainable
from deq_core.jax.weights import load_weights, save_weights
from deq_imaging.models import cells, networks
from deq_imaging.models.cells import conjugate_gradient, richardson  # noqa: F401 (this module's interface)
from deq_imaging.models.family import OperatorFamily


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


class _Jax(eqx.Module):
    """What a shared model class needs from Equinox: parameters, module tuples, the DEQ, ``__call__``."""

    _deq_class = DEQ
    _iterate = staticmethod(iterate_exactly)
    _sequence = tuple

    def _begin(self) -> None:
        pass

    @staticmethod
    def _scalar(value: float) -> jax.Array:
        return jnp.asarray(value, jnp.float32)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The module's ``forward``."""
        return self.forward(*args, **kwargs)  # type: ignore[attr-defined]


class HQSCell(cells.HQS, _Jax):
    """Half-quadratic splitting cell (:class:`deq_imaging.models.cells.HQS`) with Equinox fields."""

    denoiser: Denoiser
    log_mu: jax.Array
    log_sigma: jax.Array
    family: OperatorFamily = eqx.field(static=True)
    cg_steps: int = eqx.field(static=True)
    inner: str = eqx.field(static=True)
    start: str = eqx.field(static=True)


class PGDCell(cells.PGD, _Jax):
    """Proximal-gradient cell (:class:`deq_imaging.models.cells.PGD`) with Equinox fields."""

    denoiser: Denoiser
    log_eta: jax.Array
    log_sigma: jax.Array
    family: OperatorFamily = eqx.field(static=True)
    start: str = eqx.field(static=True)


class ImplicitNet(networks.ImplicitNet, _Jax):
    """The DEQ of a cell (:class:`deq_imaging.models.networks.ImplicitNet`) as an Equinox module."""

    deq: DEQ


class Explicit(networks.Explicit, _Jax):
    """The explicit twin (:class:`deq_imaging.models.networks.Explicit`) as an Equinox module."""

    cell: eqx.Module


class Unrolled(networks.Unrolled, _Jax):
    """The unrolled network (:class:`deq_imaging.models.networks.Unrolled`) as an Equinox module."""

    cells: tuple


def build_cell(spec: Any, cfg: Any, key: jax.Array, channels: int = 1) -> cells.Cell:
    """The cell ``cfg`` describes (an :class:`~deq_imaging.models.config.ImagingConfig`) for ``spec``."""
    denoiser = Denoiser(key, channels, cfg.features, cfg.depth, cfg.spectral_norm)
    return cells.build(spec, cfg, denoiser, HQSCell, PGDCell)


def count_parameters(model: eqx.Module) -> int:
    """Number of trainable scalars (spectral-norm state excluded)."""
    return sum(int(a.size) for a in jax.tree.leaves(eqx.filter(model, trainable(model))))


WEIGHTS = "weights.eqx"


def save(model: eqx.Module, folder: Path) -> list[str]:
    """Write ``model``'s array leaves into the model folder being written (Equinox); their file names."""
    save_weights(model, folder / WEIGHTS)
    return [WEIGHTS]


def load(like: eqx.Module, folder: Path) -> eqx.Module:
    """``like`` (built from the folder's config) with the leaves of model folder ``folder``; leaves that do
    not fit raise :class:`~deq_core.errors.ModelFileError` naming the file."""
    return load_weights(like, folder / WEIGHTS, ModelFileError)
