"""Stabilisers for JAX DEQs: the Hutchinson Jacobian-Frobenius penalty and a spectral-norm wrapper.

:class:`SpectralNorm` wraps a layer and divides its weight by a power-iteration estimate of the largest
singular value. Its singular-vector estimate ``u`` is state, not a parameter: :func:`trainable` gives
the filter that leaves it out of the optimizer, and :func:`power_iterate` advances it (the trainer does
both, one power-iteration step before each optimizer step, as ``torch``'s spectral norm does in training).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp


def jacobian_frobenius(
    f: Callable[[jax.Array, Any], jax.Array], z: jax.Array, args: Any, key: jax.Array, probes: int = 1
) -> jax.Array:
    """Hutchinson estimate of ``||J_f(z)||_F^2 / d``, averaged over the batch (Bai et al. 2021).

    ``J_f`` is the Jacobian of ``f(., args)`` at ``z`` (``z*`` of a DEQ; treated as a constant), ``d`` the
    number of entries per sample. Each of the ``probes`` standard normal probes ``v`` (drawn from ``key``)
    gives the unbiased ``||v^T J||^2``; the result is differentiable in ``f``'s arrays and ``args``.
    """
    if probes < 1:
        raise ValueError(f"jacobian_frobenius probes must be >= 1, got {probes}")
    z = jax.lax.stop_gradient(z)
    fz, vjp = jax.vjp(lambda state: f(state, args), z)
    if fz.shape != z.shape:
        raise ValueError(f"jacobian_frobenius: f(z) has shape {fz.shape}, z has {z.shape}")

    def squared(probe_key: jax.Array) -> jax.Array:
        (vj,) = vjp(jax.random.normal(probe_key, fz.shape, fz.dtype))
        return jnp.sum(vj**2)

    return jnp.sum(jax.vmap(squared)(jax.random.split(key, probes))) / (probes * z.size)


def _normalize(v: jax.Array) -> jax.Array:
    return v / (jnp.linalg.norm(v) + 1e-12)


class SpectralNorm(eqx.Module):
    """``layer`` with ``weight / sigma``, ``sigma`` a power-iteration estimate of its top singular value.

    The weight is viewed as a matrix of shape ``(out, -1)`` (first axis: outputs), as for convolutions.
    """

    layer: eqx.Module
    u: jax.Array
    weight_name: str = eqx.field(static=True)

    def __init__(self, layer: eqx.Module, *, key: jax.Array, weight_name: str = "weight") -> None:
        weight = getattr(layer, weight_name, None)
        if not isinstance(weight, jax.Array) or weight.ndim < 2:
            raise ValueError(
                f"SpectralNorm: {type(layer).__name__}.{weight_name} must be an array with ndim >= 2"
            )
        self.layer = layer
        self.weight_name = weight_name
        self.u = _normalize(jax.random.normal(key, (weight.shape[0],), weight.dtype))

    def _matrix(self) -> jax.Array:
        weight = getattr(self.layer, self.weight_name)
        return weight.reshape(weight.shape[0], -1)

    def sigma(self) -> jax.Array:
        """The current estimate ``u^T W v`` of the largest singular value (``u`` held constant)."""
        matrix = self._matrix()
        u = jax.lax.stop_gradient(self.u)
        v = jax.lax.stop_gradient(_normalize(matrix.T @ u))
        return u @ matrix @ v

    def normalized(self) -> eqx.Module:
        """The wrapped layer with its weight divided by :meth:`sigma`."""
        weight = getattr(self.layer, self.weight_name)
        return eqx.tree_at(lambda layer: getattr(layer, self.weight_name), self.layer, weight / self.sigma())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the layer with the normalised weight."""
        return self.normalized()(*args, **kwargs)

    def power_iterate(self, steps: int = 1) -> SpectralNorm:
        """A copy with ``u`` advanced by ``steps`` power-iteration steps on the current weight."""
        matrix = jax.lax.stop_gradient(self._matrix())
        u = jax.lax.fori_loop(0, steps, lambda _, u: _normalize(matrix @ _normalize(matrix.T @ u)), self.u)
        return eqx.tree_at(lambda norm: norm.u, self, u)


def _is_norm(node: Any) -> bool:
    return isinstance(node, SpectralNorm)


def _norms(tree: Any) -> list[SpectralNorm]:
    return [node for node in jax.tree.leaves(tree, is_leaf=_is_norm) if _is_norm(node)]


def spectral_normalize(
    tree: Any, key: jax.Array, types: tuple[type, ...] = (eqx.nn.Linear, eqx.nn.Conv)
) -> Any:
    """``tree`` with every layer of ``types`` wrapped in :class:`SpectralNorm` (build the optimizer after)."""
    is_layer = lambda node: isinstance(node, types)  # noqa: E731
    layers = [node for node in jax.tree.leaves(tree, is_leaf=is_layer) if is_layer(node)]
    if not layers:
        names = ", ".join(t.__name__ for t in types)
        raise ValueError(f"spectral_normalize: {type(tree).__name__} has no {names} layer")
    if is_layer(tree):
        return SpectralNorm(tree, key=key)
    keys = jax.random.split(key, len(layers))
    wrapped = [SpectralNorm(layer, key=k) for layer, k in zip(layers, keys, strict=True)]
    where = lambda t: [node for node in jax.tree.leaves(t, is_leaf=is_layer) if is_layer(node)]  # noqa: E731
    return eqx.tree_at(where, tree, wrapped)


def power_iterate(tree: Any, steps: int = 1) -> Any:
    """``tree`` with every :class:`SpectralNorm` advanced by ``steps`` power-iteration steps (jittable)."""
    norms = _norms(tree)
    if not norms:
        return tree
    if _is_norm(tree):
        return tree.power_iterate(steps)
    return eqx.tree_at(_norms, tree, [norm.power_iterate(steps) for norm in norms])


def trainable(tree: Any) -> Any:
    """Filter spec of the arrays to optimise: inexact arrays except each :class:`SpectralNorm`'s ``u``."""
    spec = jax.tree.map(eqx.is_inexact_array, tree)
    norms = _norms(spec)
    if not norms:
        return spec
    return eqx.tree_at(lambda s: [norm.u for norm in _norms(s)], spec, [False] * len(norms))
