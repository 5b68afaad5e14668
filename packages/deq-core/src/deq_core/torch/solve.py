"""``fixed_point`` for PyTorch: the engine's loop plus the backward modes as autograd surrogates.

Every backward mode returns the same forward value, the solver's ``z*``; they differ only in the
gradient, which flows through a differentiable surrogate ``s`` as ``z* + (s - s.detach())``:
``jfb`` uses ``s = f(z*)``, ``phantom`` ``k`` damped steps from ``z*``, ``implicit`` ``f(z*)`` whose
incoming gradient is replaced by the adjoint solution, and ``unroll`` differentiates the loop itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from deq_core import messages
from deq_core.config import JFB, Implicit, Phantom, SolveOptions, Stop, Unroll, solve_options
from deq_core.engine import iterate, make_solver
from deq_core.engine.adjoint import solve_adjoint
from deq_core.engine.loop import LoopResult
from deq_core.errors import ConvergenceError
from deq_core.solution import Result, Solution, Stats
from deq_core.torch.ops import TorchOps


def fixed_point(
    f: Callable[[torch.Tensor, Any], torch.Tensor],
    z0: torch.Tensor,
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

    ``z0`` has a leading batch dimension; ``f(z, args)`` returns a tensor shaped like ``z`` and must treat
    samples independently. A converged sample is frozen (its iterate stops changing); ``f`` still sees the
    whole batch, since nothing says which parts of ``args`` are per-sample (:class:`~deq_core.torch.DEQ`,
    whose input is per-sample by contract, also skips converged samples' evaluations). Autograd reaches
    tensors in ``args`` and the parameters ``f`` closes over.
    See :func:`deq_core.config.solve_options` for the options; ``throw=True`` raises
    :class:`~deq_core.errors.ConvergenceError` if any sample did not converge.
    """
    options = solve_options(solver, backward, tol, max_iter, stop, throw)
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
    shape, dtype = z0.shape, z0.dtype
    work = torch.promote_types(dtype, torch.float32)  # solver arithmetic never runs below float32

    def f_flat(z: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        z_shape = (z.shape[0], *shape[1:])
        if index is None:
            out = f(z.reshape(z_shape).to(dtype), args)
        else:
            try:
                out = f(z.reshape(z_shape).to(dtype), args[index])
            except RuntimeError as error:
                raise RuntimeError(f"{error}{messages.PER_SAMPLE_HINT}") from error
        problem = messages.bad_output(z_shape, tuple(out.shape), out.dtype)
        if problem:
            raise ValueError(problem if index is None else problem + messages.PER_SAMPLE_HINT)
        return out.reshape(z.shape[0], -1).to(work)

    z_init = z0.detach().reshape(shape[0], -1).to(work)
    solver = make_solver(options.solver)
    unroll = isinstance(options.backward, Unroll)
    check_every = 1 if z0.device.type == "cpu" else 4
    if per_sample_args and not (
        isinstance(args, torch.Tensor) and args.ndim > 0 and args.shape[0] == shape[0]
    ):
        raise ValueError(
            f"per-sample args must be one tensor with a leading batch dimension of {shape[0]}, "
            f"got {type(args).__name__} {tuple(getattr(args, 'shape', ()))}"
        )
    ops = TorchOps(differentiable=unroll, check_every=check_every, compact=per_sample_args and shape[0] > 1)
    with torch.set_grad_enabled(unroll and torch.is_grad_enabled()):
        loop = iterate(ops, f_flat, z_init, solver, options.stop, options.max_iter)
    z_star = loop.z.reshape(shape).to(dtype)
    if not unroll and torch.is_grad_enabled():
        z_star = _attach_gradient(f, z_star, args, options)
    return _solution(z_star, loop, options)


def _attach_gradient(f: Callable, z_star: torch.Tensor, args: Any, options: SolveOptions) -> torch.Tensor:
    """``z*`` with the gradient of the configured backward mode."""
    backward = options.backward
    z = z_star.detach()
    if isinstance(backward, JFB):
        surrogate = f(z, args)
    elif isinstance(backward, Phantom):
        surrogate = z
        for _ in range(backward.steps):
            surrogate = surrogate + backward.tau * (f(surrogate, args) - surrogate)
    elif isinstance(backward, Implicit):
        z = z.requires_grad_()
        fz = f(z, args)
        surrogate = fz.view_as(fz)  # the hook sits on a view, so the adjoint's own VJPs of fz skip it
        if surrogate.requires_grad:
            surrogate.register_hook(_adjoint_hook(fz, z, options))
    else:
        raise TypeError(f"unsupported backward {backward!r}")
    if not surrogate.requires_grad:
        return z_star.detach()
    return z_star.detach() + (surrogate - surrogate.detach())


def _adjoint_hook(fz: torch.Tensor, z: torch.Tensor, options: SolveOptions) -> Callable:
    """A gradient hook on ``f(z*)`` that turns the incoming ``g`` into ``(I - J^T)^{-1} g``."""
    shape, batch = z.shape, z.shape[0]

    def vjp(y: torch.Tensor) -> torch.Tensor:
        (out,) = torch.autograd.grad(fz, z, y.reshape(shape).to(fz.dtype), retain_graph=True)
        return out.reshape(batch, -1).to(y.dtype)

    def hook(g: torch.Tensor) -> torch.Tensor:
        g_flat = g.reshape(batch, -1).to(torch.promote_types(g.dtype, torch.float32))
        with torch.no_grad():
            loop = solve_adjoint(
                TorchOps(),
                vjp,
                g_flat,
                options.backward.solver,
                options.adjoint_stop,
                options.adjoint_max_iter,
            )
        failed = int((~loop.converged).sum())
        if failed:
            message = "adjoint solve: " + messages.not_converged(failed, batch, options.adjoint_max_iter)
            if options.throw:
                raise ConvergenceError(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return loop.z.reshape(shape).to(g.dtype)

    return hook


def _solution(value: torch.Tensor, loop: LoopResult, options: SolveOptions) -> Solution:
    """Package the loop's output, computing the batch result code and raising if asked to."""
    stats = Stats(
        nstep=loop.nstep,
        abs_residual=loop.abs_residual,
        rel_residual=loop.rel_residual,
        converged=loop.converged,
        trace=loop.trace,
    )
    failed = int((~loop.converged).sum())
    if bool(loop.nonfinite.any()):
        result = Result.NONFINITE
    else:
        result = Result.SUCCESSFUL if failed == 0 else Result.MAX_STEPS_REACHED
    if options.throw and failed:
        worst = float(_worst(loop, options.stop))
        raise ConvergenceError(messages.not_converged(failed, value.shape[0], options.max_iter, worst))
    return Solution(value=value, stats=stats, result=result)


def _worst(loop: LoopResult, stop: Stop) -> torch.Tensor:
    """Largest stopping-rule residual over samples that did not converge."""
    res = loop.rel_residual if stop.kind == "rel" else loop.abs_residual
    return res[~loop.converged].max()
