"""``fixed_point`` for JAX/Equinox: the engine's loop plus the backward modes.

The forward loop runs on ``stop_gradient``-ed inputs, so it is never differentiated (``Unroll`` excepted,
which differentiates a ``scan`` of the loop). ``jfb`` and ``phantom`` attach their gradient through the
surrogate ``z* + (s - stop_gradient(s))``; ``implicit`` is an ``equinox.filter_custom_vjp`` whose backward
solves the adjoint system; ``reversible`` runs its own coupled iteration (:mod:`deq_core.jax.reversible`).
``f`` may be an ``eqx.Module`` or a closure: closures are converted with ``eqx.filter_closure_convert`` so
that gradients reach the arrays they close over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from deq_core import messages
from deq_core.config import JFB, Implicit, Phantom, Reversible, SolveOptions, Unroll, solve_options
from deq_core.engine import iterate, make_solver
from deq_core.engine.adjoint import solve_adjoint
from deq_core.engine.loop import LoopResult
from deq_core.errors import ConvergenceError
from deq_core.jax.ops import JaxOps, no_gradient
from deq_core.jax.reversible import solve_reversible
from deq_core.solution import AdjointStats, Result, Solution, Stats


def fixed_point(
    f: Callable[[jax.Array, Any], jax.Array],
    z0: jax.Array,
    args: Any = None,
    *,
    solver="anderson",
    backward="implicit",
    tol: float | None = None,
    max_iter: int = 50,
    stop="rel",
    throw: bool = False,
    trace: bool = False,
) -> Solution:
    """Solve ``z* = f(z*, args)`` for a batch of samples and make ``z*`` differentiable.

    ``z0`` has a leading batch dimension; ``f(z, args)`` returns an array shaped like ``z`` and must treat
    samples independently. ``jax.grad``/``eqx.filter_grad`` reach ``z0`` (``unroll`` and ``reversible``),
    arrays in ``args`` and inside ``f``; works under ``jit`` and ``vmap``. The value is returned in
    ``z0``'s dtype. ``tol`` is ``1e-5`` unless given (or set by a ``Stop``). ``throw=True`` raises
    :class:`~deq_core.errors.ConvergenceError` if any sample did not converge (forward or adjoint); under
    ``jit`` it raises equinox's ``EquinoxRuntimeError`` instead, with a message that says so.
    """
    options = solve_options(solver, backward, tol, max_iter, stop, throw, trace)
    return solve(f, z0, args, options)


def solve(f: Callable, z0: jax.Array, args: Any, options: SolveOptions) -> Solution:
    """:func:`fixed_point` with already validated options."""
    if not isinstance(z0, jax.Array | np.ndarray):
        raise TypeError(f"z0 must be a jax.Array, got {type(z0).__name__}")
    z0 = jnp.asarray(z0)
    problem = messages.bad_z0(tuple(z0.shape), z0.dtype)
    if problem:
        raise ValueError(problem)
    out = jax.eval_shape(f, z0, args)
    messages.check_output(tuple(z0.shape), out, jax.ShapeDtypeStruct, "jax.Array")
    if not isinstance(f, eqx.Module):
        f = eqx.filter_closure_convert(f, z0, args)
    backward = options.backward
    record = None
    if isinstance(backward, Reversible):
        z_star, loop = solve_reversible(f, z0, args, options)
    elif isinstance(backward, Unroll):
        loop = _loop(f, z0, args, options, differentiable=True)
        z_star = _unflatten(loop.z, z0)
    else:
        loop = _loop(*no_gradient((f, z0, args)), options, differentiable=False)
        record = AdjointStats() if isinstance(backward, Implicit) else None
        z_star = _attach_gradient(f, _unflatten(loop.z, z0), args, options, record)
    return _solution(z_star, loop, options, record)


def _loop(f: Callable, z0: jax.Array, args: Any, options: SolveOptions, differentiable: bool) -> LoopResult:
    """Run the engine's loop on flattened iterates in the working dtype (at least float32)."""
    work = jnp.promote_types(z0.dtype, jnp.float32)
    batch = z0.shape[0]

    def f_flat(z):
        return f(z.reshape(z0.shape).astype(z0.dtype), args).reshape(batch, -1).astype(work)

    z_init = z0.reshape(batch, -1).astype(work)
    ops = JaxOps(differentiable=differentiable)
    solver = make_solver(options.solver)
    return iterate(ops, f_flat, z_init, solver, options.stop, options.max_iter, options.trace)


def _attach_gradient(
    f: Callable, z_star: jax.Array, args: Any, options: SolveOptions, record: AdjointStats | None
) -> jax.Array:
    """``z*`` with the gradient of the configured backward mode."""
    backward = options.backward
    if isinstance(backward, Implicit):
        return _implicit((f, args), z_star, options, record)
    if isinstance(backward, JFB):
        surrogate = f(z_star, args)
    elif isinstance(backward, Phantom):
        surrogate = z_star
        for _ in range(backward.steps):
            step = surrogate + backward.tau * (f(surrogate, args) - surrogate)
            surrogate = step.astype(z_star.dtype)
    else:
        raise TypeError(f"unsupported backward {backward!r}")
    return (z_star + (surrogate - jax.lax.stop_gradient(surrogate))).astype(z_star.dtype)


@eqx.filter_custom_vjp
def _implicit(f_args, z_star, options, record):
    """Identity on ``z*``; its VJP is the implicit-function-theorem gradient with respect to ``(f, args)``."""
    return z_star


@_implicit.def_fwd
def _implicit_fwd(perturbed, f_args, z_star, options, record):
    return z_star, None


@_implicit.def_bwd
def _implicit_bwd(residuals, g, perturbed, f_args, z_star, options, record):
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
    y = _report(y, loop, options.adjoint_max_iter, options.throw, "adjoint solve: ", record)
    _, vjp_f_args = eqx.filter_vjp(lambda fa: fa[0](z_star, fa[1]), f_args)
    return vjp_f_args(y)[0]


def _unflatten(z: jax.Array, like: jax.Array) -> jax.Array:
    return z.reshape(like.shape).astype(like.dtype)


def _report(
    x: Any, loop: LoopResult, max_iter: int, throw: bool, prefix: str = "", record: AdjointStats | None = None
) -> Any:
    """Report failed samples: raise (``throw``) or, for the adjoint, record and warn once per call site.

    Outside ``jit`` this raises :class:`ConvergenceError`; under ``jit`` an ``EquinoxRuntimeError`` (the
    only way to raise from compiled code), whose message says so.
    """
    if not isinstance(loop.status, jax.core.Tracer):
        _host_report(np.asarray(loop.status), np.asarray(loop.rel_residual), max_iter, throw, prefix)
        if record is not None:
            record.nstep, record.residual, record.converged = loop.nstep, loop.rel_residual, loop.converged
        return x
    if record is not None or (prefix and not throw):

        def on_host(status, residual, nstep):
            if record is not None:
                record.nstep, record.residual, record.converged = nstep, residual, status == 0
            _host_report(status, residual, max_iter, throw=False, prefix=prefix)

        jax.debug.callback(on_host, loop.status, loop.rel_residual, loop.nstep)
    if not throw:
        return x
    batch = loop.status.shape[0]
    failed = jnp.sum(~loop.converged)
    note = messages.under_jit("equinox.EquinoxRuntimeError")
    msgs = [prefix + messages.not_converged(k, batch, max_iter) + note for k in range(1, batch + 1)]
    return eqx.branched_error_if(x, failed > 0, jnp.maximum(failed - 1, 0), msgs)


def _host_report(status: np.ndarray, residual: np.ndarray, max_iter: int, throw: bool, prefix: str) -> None:
    """Raise or warn (adjoint only) about the failed samples of concrete per-sample results."""
    failed = status != Result.SUCCESSFUL
    if not failed.any():
        return
    counts = {int(code): int((status == code).sum()) for code in Result}
    worst = float(residual[failed].max()) if not prefix else None
    message = prefix + messages.not_converged(
        int(failed.sum()), status.size, max_iter, messages.reasons(counts), worst
    )
    if throw:
        raise ConvergenceError(message)
    if prefix:
        messages.warn_at_caller(message)


def _solution(
    value: jax.Array, loop: LoopResult, options: SolveOptions, record: AdjointStats | None
) -> Solution:
    """Package the loop's output with the batch result code (the worst sample's), raising if asked to."""
    if options.throw:
        value = _report(value, loop, options.max_iter, throw=True)
    stats = Stats(
        nstep=loop.nstep,
        abs_residual=loop.abs_residual,
        rel_residual=loop.rel_residual,
        converged=loop.converged,
        status=loop.status,
        trace=loop.trace,
    )
    return Solution(value=value, stats=stats, result=jnp.max(loop.status), adjoint=record)
