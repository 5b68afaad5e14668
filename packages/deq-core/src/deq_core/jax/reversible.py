"""The reversible backward for JAX/Equinox: :mod:`deq_core.engine.reversible` behind a custom VJP.

The forward loop runs on ``stop_gradient``-ed inputs; ``_reversible`` is the identity on its ``z_N``, and
its ``equinox.filter_custom_vjp`` backward walks the iteration in reverse, accumulating the cotangent of
``(f, args)`` with ``eqx.filter_vjp``. Closures are converted with ``eqx.filter_closure_convert`` so the
gradient reaches the arrays they close over; everything works under ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from deq_core.config import SolveOptions
from deq_core.engine import reversible
from deq_core.engine.loop import LoopResult
from deq_core.jax.ops import JaxOps, no_gradient


def solve_reversible(
    f: Callable[[jax.Array, Any], jax.Array], z0: jax.Array, args: Any, options: SolveOptions
) -> tuple[jax.Array, LoopResult]:
    """Solve by the coupled iteration of ``options.backward`` (a ``Reversible``); ``z_N`` has its gradient.

    Returns ``z_N`` shaped like ``z0`` in ``z0``'s dtype and the loop's flattened per-sample result. The
    gradient is the exact one of the computed ``z_N`` with respect to ``z0``, ``args`` and the arrays in
    ``f``; see :mod:`deq_core.engine.reversible` for the iteration and its accuracy.
    """
    z0 = jnp.asarray(z0)
    if not isinstance(f, eqx.Module):
        f = eqx.filter_closure_convert(f, z0, args)
    shape = z0.shape[1:]
    z_init = z0.reshape(z0.shape[0], -1).astype(jnp.promote_types(z0.dtype, jnp.float32))
    f_args, z_fixed = no_gradient(((f, args), z_init))
    loop, y_last = reversible.forward(
        JaxOps(),
        lambda z: _apply(f_args, z, shape, z0.dtype),
        z_fixed,
        options.backward.beta,
        options.stop,
        options.max_iter,
    )
    value = _reversible(((f, args), z_init), loop.z, y_last, loop.nstep, options, shape, z0.dtype)
    return value.reshape(z0.shape).astype(z0.dtype), loop


def _apply(f_args: tuple, z: jax.Array, shape: tuple, dtype: Any) -> jax.Array:
    """``f(z, args)`` on flattened ``(batch, n)`` iterates, computed in ``dtype``, returned in ``z``'s."""
    f, args = f_args
    return f(z.reshape(z.shape[0], *shape).astype(dtype), args).reshape(z.shape[0], -1).astype(z.dtype)


@eqx.filter_custom_vjp
def _reversible(f_args_z0, z_last, y_last, nstep, options, shape, dtype):
    """Identity on ``z_N``; its VJP walks the coupled iteration back to ``(f, args)`` and ``z0``."""
    return z_last


@_reversible.def_fwd
def _reversible_fwd(perturbed, f_args_z0, z_last, y_last, nstep, options, shape, dtype):
    return z_last, None


@_reversible.def_bwd
def _reversible_bwd(residuals, g, perturbed, f_args_z0, z_last, y_last, nstep, options, shape, dtype):
    f_args, _ = f_args_z0

    def vjp(point: jax.Array, cotangent: jax.Array, acc: Any) -> tuple:
        out, pull = eqx.filter_vjp(lambda fa, z: _apply(fa, z, shape, dtype), f_args, point)
        f_args_bar, point_bar = pull(cotangent)
        return out, point_bar, jax.tree.map(jnp.add, acc, f_args_bar)

    acc = jax.tree.map(jnp.zeros_like, eqx.filter(f_args, eqx.is_inexact_array))
    z0_bar, acc = reversible.backward(
        JaxOps(), vjp, z_last, y_last, nstep, g, acc, options.backward.beta, options.max_iter
    )
    return acc, z0_bar
