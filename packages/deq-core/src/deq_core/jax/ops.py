"""The engine's array interface (:class:`deq_core.engine.Ops`) for JAX."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

_DTYPES = {"int": jnp.int32, "bool": jnp.bool_}


def no_gradient(tree: Any) -> Any:
    """``tree`` with every array leaf behind ``stop_gradient`` (the loops run on such inputs)."""
    return jax.tree.map(lambda x: jax.lax.stop_gradient(x) if isinstance(x, jax.Array) else x, tree)


class JaxOps:
    """JAX primitives for :mod:`deq_core.engine`.

    The loop is ``lax.while_loop`` (jit- and vmap-friendly). When the loop must be differentiable in
    reverse mode (``Unroll``), it is a ``lax.scan`` of ``max_steps`` guarded steps instead, since
    ``while_loop`` has no reverse-mode rule; finished steps skip the body through ``lax.cond``.
    """

    def __init__(self, differentiable: bool = False):
        self.differentiable = differentiable

    def zeros(self, shape, like, dtype="float"):
        return jnp.zeros(shape, dtype=_DTYPES.get(dtype, like.dtype))

    def full(self, shape, value, like):
        return jnp.full(shape, value, dtype=like.dtype)

    def arange(self, n, like):
        return jnp.arange(n)

    def where(self, mask, a, b):
        return jnp.where(mask, a, b)

    def select_rows(self, mask, a, b):
        select = lambda x, y: jnp.where(mask.reshape(-1, *[1] * (x.ndim - 1)), x, y)
        return tuple(map(select, a, b)) if isinstance(a, tuple) else select(a, b)

    def norm(self, x, ord):
        x = jax.lax.stop_gradient(x)
        return jnp.linalg.norm(x, ord=2 if ord == 2 else jnp.inf, axis=1)

    def dot(self, x, y):
        return jnp.sum(x * y, axis=1)

    def solve(self, a, b):
        return jnp.linalg.solve(a, b[..., None])[..., 0]

    def transpose(self, a):
        return jnp.swapaxes(a, -1, -2)

    def sum(self, x, axis):
        return jnp.sum(x, axis=axis)

    def max(self, x, axis):
        return jnp.max(x, axis=axis)

    def maximum(self, a, b):
        return jnp.maximum(a, b)

    def minimum(self, a, b):
        return jnp.minimum(a, b)

    def abs(self, x):
        return jnp.abs(x)

    def sqrt(self, x):
        return jnp.sqrt(x)

    def isfinite(self, x):
        return jnp.isfinite(x)

    def any(self, x):
        return jnp.any(x)

    def all(self, x):
        return jnp.all(x)

    def cond(self, pred, fast, general):
        return general()  # XLA fuses the bookkeeping into a few kernels: a branch would save nothing

    def tiny(self, like):
        return float(jnp.finfo(like.dtype).tiny)

    def set_slot(self, buffer, index, value):
        return buffer.at[:, index].set(value)

    def set_row(self, buffer, index, value):
        return buffer.at[index].set(value)

    def stop_gradient(self, x):
        return jax.lax.stop_gradient(x)

    def per_sample(self, fn, *arrays):
        return fn(self, *arrays)

    def evaluate(self, f, z, active):
        return f(z)

    def while_loop(self, cond: Callable, body: Callable, state: Any, max_steps: int) -> Any:
        state = jax.tree.map(jnp.asarray, state)
        if not self.differentiable:
            return jax.lax.while_loop(cond, body, state)

        def guarded(s, _):
            return jax.lax.cond(cond(s), body, lambda t: t, s), None

        return jax.lax.scan(guarded, state, None, length=max_steps)[0]

    def fori_loop(self, lower, upper, body, state):
        return jax.lax.fori_loop(lower, upper, body, state)
