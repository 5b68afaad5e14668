"""``fixed_point`` for PyTorch: the engine's loop plus the backward modes as autograd surrogates.

Every backward mode returns the same forward value, the solver's ``z*``; they differ only in the
gradient, which flows through a differentiable surrogate ``s`` as ``z* + (s - s.detach())``:
``jfb`` uses ``s = f(z*)``, ``phantom`` ``k`` damped steps from ``z*``, ``implicit`` ``f(z*)`` whose
incoming gradient is replaced by the adjoint solution, and ``unroll`` differentiates the loop itself.
``reversible`` runs its own coupled iteration (:mod:`deq_core.torch.reversible`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from deq_core import messages
from deq_core.config import JFB, Implicit, Phantom, Reversible, SolveOptions, Unroll, solve_options
from deq_core.engine import iterate, make_solver
from deq_core.engine.adjoint import solve_adjoint
from deq_core.engine.loop import LoopResult
from deq_core.errors import ConvergenceError
from deq_core.solution import AdjointStats, Result, Solution, Stats
from deq_core.torch.ops import TorchOps
from deq_core.torch.reversible import solve_reversible


def fixed_point(
    f: Callable[[torch.Tensor, Any], torch.Tensor],
    z0: torch.Tensor,
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

    ``z0`` has a leading batch dimension; ``f(z, args)`` returns a tensor shaped like ``z`` and must treat
    samples independently. A converged sample is frozen (its iterate stops changing); ``f`` still sees the
    whole batch, since nothing says which parts of ``args`` are per-sample (:class:`~deq_core.torch.DEQ`,
    whose input is per-sample by contract, also skips converged samples' evaluations). Autograd reaches
    ``z0`` (``unroll`` and ``reversible``), tensors in ``args`` and the parameters ``f`` closes over.
    The value is returned in ``z0``'s dtype. ``tol`` is ``1e-5`` unless given (or set by a ``Stop``).
    See :func:`deq_core.config.solve_options` for the options; ``throw=True`` raises
    :class:`~deq_core.errors.ConvergenceError` if any sample did not converge (forward or adjoint).
    """
    options = solve_options(solver, backward, tol, max_iter, stop, throw, trace)
    return solve(f, z0, args, options)


def solve(
    f: Callable, z0: torch.Tensor, args: Any, options: SolveOptions, per_sample_args: bool = False
) -> Solution:
    """:func:`fixed_point` with already validated options.

    With ``per_sample_args``, ``args`` is one tensor whose rows are the samples: ``f`` is then called on the
    samples not yet converged, with the matching rows of ``args``, so converged samples cost nothing.
    """
    if not isinstance(z0, torch.Tensor):
        raise TypeError(f"z0 must be a torch.Tensor, got {type(z0).__name__}")
    problem = messages.bad_z0(tuple(z0.shape), z0.dtype)
    if problem:
        raise ValueError(problem)
    if per_sample_args and not (
        isinstance(args, torch.Tensor) and args.ndim > 0 and args.shape[0] == z0.shape[0]
    ):
        raise ValueError(
            f"per-sample args must be one tensor with a leading batch dimension of {z0.shape[0]}, "
            f"got {type(args).__name__} {tuple(getattr(args, 'shape', ()))}"
        )
    backward = options.backward
    if isinstance(backward, Reversible):
        checked = lambda z, a: _checked(f(z, a), z.shape)
        value, loop = solve_reversible(checked, z0, args, options)
        return _solution(value, loop, options)
    shape, dtype = z0.shape, z0.dtype
    work = torch.promote_types(dtype, torch.float32)  # solver arithmetic never runs below float32
    device = z0.device.type
    autocast = torch.is_autocast_enabled(device)  # the cell keeps the caller's autocast, the solver does not
    cast_dtype = torch.get_autocast_dtype(device)

    def f_flat(z: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        if autocast:
            with torch.autocast(device, dtype=cast_dtype):
                return evaluate(z, index)
        return evaluate(z, index)

    def evaluate(z: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        z_shape = (z.shape[0], *shape[1:])
        if index is None:
            out = _checked(f(z.reshape(z_shape).to(dtype), args), z_shape)
        else:
            try:
                out = _checked(f(z.reshape(z_shape).to(dtype), args[index]), z_shape)
            except (RuntimeError, ValueError, TypeError) as error:
                raise type(error)(f"{error}{messages.PER_SAMPLE_HINT}") from error
        return out.reshape(z.shape[0], -1).to(work)

    unroll = isinstance(backward, Unroll)
    z_init = (z0 if unroll else z0.detach()).reshape(shape[0], -1).to(work)
    on_cpu = z0.device.type == "cpu"
    compact = per_sample_args and shape[0] > 1
    ops = TorchOps(differentiable=unroll, check_every=1 if on_cpu else 4, compact=compact, cpu=on_cpu)
    with torch.set_grad_enabled(unroll and torch.is_grad_enabled()), torch.autocast(device, enabled=False):
        loop = iterate(
            ops, f_flat, z_init, make_solver(options.solver), options.stop, options.max_iter, options.trace
        )
    z_star = loop.z.reshape(shape).to(dtype)
    record = AdjointStats() if isinstance(backward, Implicit) else None
    if not unroll and torch.is_grad_enabled():
        z_star = _attach_gradient(f, z_star, args, options, record)
    return _solution(z_star, loop, options, record)


def _checked(out: Any, z_shape: tuple) -> torch.Tensor:
    """``out`` if it is a floating tensor shaped like ``z``, else a ValueError/TypeError that says why."""
    if not (isinstance(out, torch.Tensor) and out.shape == z_shape and out.is_floating_point()):
        messages.check_output(z_shape, out, torch.Tensor, "torch.Tensor")
    return out


def _attach_gradient(
    f: Callable, z_star: torch.Tensor, args: Any, options: SolveOptions, record: AdjointStats | None
) -> torch.Tensor:
    """``z*`` with the gradient of the configured backward mode (in ``z*``'s dtype)."""
    backward = options.backward
    z = z_star.detach()
    if isinstance(backward, JFB):
        surrogate = f(z, args)
    elif isinstance(backward, Phantom):
        surrogate = z
        for _ in range(backward.steps):
            step = surrogate + backward.tau * (f(surrogate, args) - surrogate)
            surrogate = step.to(z.dtype)
    elif isinstance(backward, Implicit):
        z = z.requires_grad_()
        fz = f(z, args)
        surrogate = fz.view_as(fz)  # the hook sits on a view, so the adjoint's own VJPs of fz skip it
        if surrogate.requires_grad:
            surrogate.register_hook(_adjoint_hook(fz, z, options, record))
    else:
        raise TypeError(f"unsupported backward {backward!r}")
    if not surrogate.requires_grad:
        return z_star.detach()
    return (z_star.detach() + (surrogate - surrogate.detach())).to(z_star.dtype)


def _adjoint_hook(fz: torch.Tensor, z: torch.Tensor, options: SolveOptions, record: AdjointStats) -> Callable:
    """A gradient hook on ``f(z*)`` that turns the incoming ``g`` into ``(I - J^T)^{-1} g``."""
    shape, batch = z.shape, z.shape[0]

    def vjp(y: torch.Tensor) -> torch.Tensor:
        (out,) = torch.autograd.grad(fz, z, y.reshape(shape).to(fz.dtype), retain_graph=True)
        return out.reshape(batch, -1).to(y.dtype)

    def hook(g: torch.Tensor) -> torch.Tensor:
        g_flat = g.reshape(batch, -1).to(torch.promote_types(g.dtype, torch.float32))
        with torch.no_grad():
            loop = solve_adjoint(
                TorchOps(cpu=g.device.type == "cpu"),
                vjp,
                g_flat,
                options.backward.solver,
                options.adjoint_stop,
                options.adjoint_max_iter,
            )
        record.nstep, record.residual, record.converged = loop.nstep, loop.rel_residual, loop.converged
        report(loop, options.adjoint_max_iter, options.throw, "adjoint solve: ")
        return loop.z.reshape(shape).to(g.dtype)

    return hook


def report(loop: LoopResult, max_iter: int, throw: bool, prefix: str = "") -> None:
    """Raise :class:`ConvergenceError` (``throw``) or warn once per call site when samples failed."""
    failed = ~loop.converged
    if not bool(failed.any()):
        return
    counts = {int(code): int((loop.status == code).sum()) for code in Result}
    worst = float(loop.rel_residual[failed].max()) if prefix == "" else None
    message = prefix + messages.not_converged(
        int(failed.sum()), failed.numel(), max_iter, messages.reasons(counts), worst
    )
    if throw:
        raise ConvergenceError(message)
    if prefix:  # a forward solve reports through its stats; the adjoint has no caller to return them to
        messages.warn_at_caller(message)


def _solution(
    value: torch.Tensor, loop: LoopResult, options: SolveOptions, record: AdjointStats | None = None
) -> Solution:
    """Package the loop's output with the batch result code (the worst sample's), raising if asked to."""
    stats = Stats(
        nstep=loop.nstep,
        abs_residual=loop.abs_residual,
        rel_residual=loop.rel_residual,
        converged=loop.converged,
        status=loop.status,
        trace=loop.trace,
    )
    if options.throw:
        report(loop, options.max_iter, throw=True)
    return Solution(value=value, stats=stats, result=Result(int(loop.status.max())), adjoint=record)
