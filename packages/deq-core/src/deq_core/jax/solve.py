"""``fixed_point`` for JAX/Equinox: the engine's loop plus the backward modes.

The forward loop runs on ``stop_gradient``-ed inputs, so it is never differentiated (``Unroll`` excepted,
which differentiates a ``scan`` of the loop). ``jfb`` and ``phantom`` attach their gradient through the
surrogate ``z* + (s - stop_gradient(s))``; ``implicit`` is an ``equinox.filter_custom_vjp`` whose backward
solves the adjoint system. ``f`` may be an ``eqx.Module`` or a closure: closures are converted with
``eqx.filter_closure_convert`` so that gradients reach the arrays they close over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from deq_core import messages
from deq_core.config import JFB, Implicit, Phantom, SolveOptions, Unroll, solve_options
from deq_core.engine import iterate, make_solver
from deq_core.engine.adjoint import solve_adjoint
from deq_core.engine.loop import LoopResult
from deq_core.jax.ops import JaxOps
from deq_core.solution import Result, Solution, Stats


def fixed_point(
    f: Callable[[jax.Array, Any], jax.Array],
    z0: jax.Array,
    args: Any = None,
    *,
    solver="anderson",
    backward="implicit",
    tol: float = 1e-5,
    max_iter: int = 50,
    stop="rel",
    throw: bool = False,
) -> Solution:
    """Solve ``z* = f(z*, args)`` for a batch of samples and make ``z*`` differentiable.

    ``z0`` has a leading batch dimension; ``f(z, args)`` returns an array shaped like ``z`` and must treat
    samples independently. ``jax.grad``/``eqx.filter_grad`` reach arrays in ``args`` and inside ``f``;
    works under ``jit`` and ``vmap``. ``throw=True`` raises an ``EquinoxRuntimeError`` (also under ``jit``)
    if any sample did not converge.
    """
    options = solve_options(solver, backward, tol, max_iter, stop, throw)
    return solve(f, z0, args, options)


def solve(f: Callable, z0: jax.Array, args: Any, options: SolveOptions) -> Solution:
    """:func:`fixed_point` with already validated options."""
    z0 = jnp.asarray(z0)
    problem = messages.bad_z0(tuple(z0.shape), z0.dtype)
    if problem:
        raise ValueError(problem)
    out = jax.eval_shape(f, z0, args)
    problem = messages.bad_output(tuple(z0.shape), tuple(out.shape), out.dtype)
    if problem:
        raise ValueError(problem)
    if not isinstance(f, eqx.Module):
        f = eqx.filter_closure_convert(f, z0, args)
    unroll = isinstance(options.backward, Unroll)
    if unroll:
        loop = _loop(f, z0, args, options, differentiable=True)
        z_star = _unflatten(loop.z, z0)
    else:
        loop = _loop(*_no_gradient((f, z0, args)), options, differentiable=False)
        z_star = _attach_gradient(f, _unflatten(loop.z, z0), args, options)
    return _solution(z_star, loop, options)


def _loop(f: Callable, z0: jax.Array, args: Any, options: SolveOptions, differentiable: bool) -> LoopResult:
    """Run the engine's loop on flattened iterates in the working dtype (at least float32)."""
    work = jnp.promote_types(z0.dtype, jnp.float32)
    batch = z0.shape[0]

    def f_flat(z):
        return f(z.reshape(z0.shape).astype(z0.dtype), args).reshape(batch, -1).astype(work)

    z_init = z0.reshape(batch, -1).astype(work)
    ops = JaxOps(differentiable=differentiable)
    return iterate(ops, f_flat, z_init, make_solver(options.solver), options.stop, options.max_iter)


def _attach_gradient(f: Callable, z_star: jax.Array, args: Any, options: SolveOptions) -> jax.Array:
    """``z*`` with the gradient of the configured backward mode."""
    backward = options.backward
    if isinstance(backward, Implicit):
        return _implicit((f, args), z_star, options)
    if isinstance(backward, JFB):
        surrogate = f(z_star, args)
    elif isinstance(backward, Phantom):
        surrogate = z_star
        for _ in range(backward.steps):
            surrogate = surrogate + backward.tau * (f(surrogate, args) - surrogate)
    else:
        raise TypeError(f"unsupported backward {backward!r}")
    return z_star + (surrogate - jax.lax.stop_gradient(surrogate))


@eqx.filter_custom_vjp
def _implicit(f_args, z_star, options):
    """Identity on ``z*``; its VJP is the implicit-function-theorem gradient with respect to ``(f, args)``."""
    return z_star


@_implicit.def_fwd
def _implicit_fwd(perturbed, f_args, z_star, options):
    return z_star, None


@_implicit.def_bwd
def _implicit_bwd(residuals, g, perturbed, f_args, z_star, options):
    f, args = f_args
    batch = z_star.shape[0]
    work = jnp.promote_types(z_star.dtype, jnp.float32)
    _, vjp_z = jax.vjp(lambda z: f(z, args), z_star)

    def vjp(y):
        return vjp_z(y.reshape(z_star.shape).astype(z_star.dtype))[0].reshape(batch, -1).astype(work)

    g_flat = g.reshape(batch, -1).astype(work)
    loop = solve_adjoint(
        JaxOps(), vjp, g_flat, options.backward.solver, options.adjoint_stop, options.adjoint_max_iter
    )
    y = loop.z.reshape(z_star.shape).astype(g.dtype)
    if options.throw:
        y = _error_if_not_converged(y, loop.converged, options.adjoint_max_iter, "adjoint solve: ")
    _, vjp_f_args = eqx.filter_vjp(lambda fa: fa[0](z_star, fa[1]), f_args)
    return vjp_f_args(y)[0]


def _no_gradient(tree: Any) -> Any:
    """``tree`` with every array leaf behind ``stop_gradient``."""
    return jax.tree.map(lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, tree)


def _unflatten(z: jax.Array, like: jax.Array) -> jax.Array:
    return z.reshape(like.shape).astype(like.dtype)


def _error_if_not_converged(x: Any, converged: jax.Array, max_iter: int, prefix: str = "") -> Any:
    """Raise (also under ``jit``) with a message naming how many samples did not converge."""
    batch = converged.shape[0]
    failed = jnp.sum(~converged)
    msgs = [prefix + messages.not_converged(k, batch, max_iter) for k in range(1, batch + 1)]
    return eqx.branched_error_if(x, failed > 0, jnp.maximum(failed - 1, 0), msgs)


def _solution(value: jax.Array, loop: LoopResult, options: SolveOptions) -> Solution:
    """Package the loop's output with the batch result code, raising if asked to."""
    result = jnp.where(
        jnp.any(loop.nonfinite),
        int(Result.NONFINITE),
        jnp.where(jnp.all(loop.converged), int(Result.SUCCESSFUL), int(Result.MAX_STEPS_REACHED)),
    )
    if options.throw:
        value = _error_if_not_converged(value, loop.converged, options.max_iter)
    stats = Stats(
        nstep=loop.nstep,
        abs_residual=loop.abs_residual,
        rel_residual=loop.rel_residual,
        converged=loop.converged,
        trace=loop.trace,
    )
    return Solution(value=value, stats=stats, result=result)
