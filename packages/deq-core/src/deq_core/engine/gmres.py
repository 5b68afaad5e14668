"""Batched restarted GMRES for the adjoint system ``(I - J^T) y = g``, one Krylov space per sample.

Each sample's system is independent (the batch Jacobian is block diagonal), so inner products,
rotations and stopping are per sample. Arnoldi uses classical Gram-Schmidt applied twice against the
whole fixed-size basis, which keeps shapes static for ``jit``; Givens rotations give the residual.

The budget is counted in calls of ``matvec`` (each is one batched product). The solve starts from
``x = 0``, whose residual ``b`` is known without a call. A cycle then spends ``k`` Arnoldi steps and one
call for the true residual ``b - A x`` of its new ``x``, which decides convergence and is the next
cycle's starting residual; ``k`` is at most ``restart`` and at most what the budget leaves after that
check, so the last cycle is truncated and the calls never exceed ``max_iter``. A single call left over
is not spent: a step without its check could not decide anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deq_core.config import Stop
from deq_core.engine.loop import LoopResult
from deq_core.engine.ops import Array, Ops
from deq_core.engine.solvers import _combine, _project
from deq_core.solution import Result


def gmres(
    ops: Ops,
    matvec: Callable[[Array], Array],
    b: Array,
    restart: int,
    stop: Stop,
    max_iter: int,
) -> LoopResult:
    """Solve ``matvec(x) = b`` per sample, ``b`` of shape ``(batch, n)``, in at most ``max_iter`` matvecs.

    A sample converges when its true residual, recomputed from the returned ``x``, satisfies
    ``||b - A x|| <= stop.atol + stop.rtol * ||b||`` in ``stop.norm``. Inside a cycle the Givens estimate
    of the 2-norm residual, compared with that same bound, only decides when to stop early: a sample whose
    estimate meets it stops adding Krylov vectors, and the cycle ends once no sample is left adding (with
    ``norm="inf"`` the 2-norm estimate bounds the max-norm residual, so it stops no sooner than needed). A
    sample whose true residual misses the bound goes on to the next cycle while the budget allows; it ends
    ``MAX_STEPS_REACHED``, or ``NONFINITE`` as soon as its true residual is NaN or infinite.
    ``stop.divergence`` does not apply (a GMRES cycle never increases the residual).

    ``nstep`` counts, per sample, the calls whose result the sample used: its Arnoldi steps plus one
    true-residual check per cycle it took part in. A call spent only on other samples does not count,
    and ``nstep`` never exceeds ``max_iter``. ``abs_residual`` is the true residual in ``stop.norm``,
    ``rel_residual`` that over ``||b||``; ``trace`` is ``None``.
    """
    batch, n = b.shape
    m = restart
    tiny = ops.tiny(b)
    b_norm = ops.norm(b, stop.norm)
    bound = stop.atol + stop.rtol * b_norm
    met = b_norm <= bound  # x = 0 already meets the rule (b = 0, or rtol >= 1)
    finite = ops.isfinite(b_norm)
    state = {
        "x": ops.zeros((batch, n), b),
        "r": b,  # true residual b - A x of the current x
        "abs_residual": b_norm,
        "used": ops.zeros((), b, dtype="int"),  # calls of matvec so far
        "nstep": ops.zeros((batch,), b, dtype="int"),
        "status": ops.where(
            met,
            int(Result.SUCCESSFUL),
            ops.where(finite, int(Result.MAX_STEPS_REACHED), int(Result.NONFINITE)),
        ),
        "active": finite & ~met,
    }

    def arnoldi_step(s: dict[str, Any]) -> dict[str, Any]:
        """Extend every going sample's Krylov basis by one vector; frozen samples keep their state."""
        j, V, H, cs, sn, e = s["j"], s["V"], s["H"], s["cs"], s["sn"], s["e"]
        going = s["going"] & (j < s["limit"])
        w = matvec(V[:, j])
        h = _project(ops, V, w)
        w = w - _combine(V, h)
        h2 = _project(ops, V, w)
        w = w - _combine(V, h2)
        hn = ops.norm(w, 2)
        index = ops.arange(m + 1, b)
        col = ops.where(index == j + 1, hn[:, None], h + h2)

        def rotate(i: Any, c: Array) -> Array:
            """Apply the ``i``-th earlier rotation to the new column."""
            a, bb = _at(ops, c, i), _at(ops, c, i + 1)
            ci, si = _at(ops, cs, i), _at(ops, sn, i)
            c = ops.where(index == i, (ci * a + si * bb)[:, None], c)
            return ops.where(index == i + 1, (-si * a + ci * bb)[:, None], c)

        col = ops.fori_loop(0, j, rotate, col)
        a, bb = _at(ops, col, j), _at(ops, col, j + 1)
        den = ops.sqrt(a * a + bb * bb)
        ok = den > tiny
        safe = ops.where(ok, den, 1.0)
        c = ops.where(ok, a / safe, 0.0)  # a = b = 0: a swap, so the estimate keeps |e_j| (no progress)
        sn_j = ops.where(ok, bb / safe, 1.0)
        col = ops.where(index == j, den[:, None], ops.where(index == j + 1, 0.0, col))
        ej = _at(ops, e, j)
        e_new = ops.where(index == j + 1, (-sn_j * ej)[:, None], ops.where(index == j, (c * ej)[:, None], e))
        e = ops.where(going[:, None], e_new, e)
        estimate = ops.abs(_at(ops, e, j + 1))
        v = w / ops.maximum(hn, tiny)[:, None]
        return {
            **s,
            "j": j + 1,
            "V": ops.set_slot(V, j + 1, ops.where(going[:, None], v, 0.0)),
            "H": ops.set_slot(H, j, ops.where(going[:, None], col, 0.0)),  # column-major: (batch, m, m + 1)
            "cs": ops.set_slot(cs, j, ops.where(going, c, 0.0)),
            "sn": ops.set_slot(sn, j, ops.where(going, sn_j, 0.0)),
            "e": e,
            "going": going & ~(estimate <= bound) & ops.isfinite(estimate + den),
            "steps": s["steps"] + going,
        }

    def cycle(s: dict[str, Any]) -> dict[str, Any]:
        """One restart cycle from the true residual, ended by the true residual of its new ``x``."""
        active, r = s["active"], s["r"]
        beta = ops.norm(r, 2)
        v0 = ops.where(active[:, None], r / ops.maximum(beta, tiny)[:, None], 0.0)
        first = (ops.arange(m + 1, b) == 0) & active[:, None]
        inner = {
            "j": 0,
            "V": ops.set_slot(ops.zeros((batch, m + 1, n), b), 0, v0),
            "H": ops.zeros((batch, m, m + 1), b),
            "cs": ops.zeros((batch, m), b),
            "sn": ops.zeros((batch, m), b),
            "e": ops.where(first, beta[:, None], 0.0),
            "going": active,
            "steps": ops.zeros((batch,), b, dtype="int"),
            "limit": max_iter - s["used"] - 1,  # Arnoldi steps the budget allows before the check
        }
        going = lambda t: ops.any(t["going"]) & (t["j"] < m) & (t["j"] < t["limit"])
        inner = ops.while_loop(going, arnoldi_step, inner, m)
        V, e, steps = inner["V"], inner["e"], inner["steps"]
        R = ops.transpose(inner["H"])[:, :m, :]  # upper triangular; zero past each sample's steps
        index = ops.arange(m, b)
        diag_ok = ops.abs(_diag(ops, R, index)) > tiny
        R = ops.where((index[:, None] == index[None, :]) & ~diag_ok[:, None, :], 1.0, R)
        y = ops.solve(R, ops.where(diag_ok, e[:, :m], 0.0))
        took_part = steps > 0
        x = ops.where(took_part[:, None], s["x"] + _combine(V[:, :m], y), s["x"])
        r = ops.where(took_part[:, None], b - matvec(x), r)
        res = ops.where(took_part, ops.norm(r, stop.norm), s["abs_residual"])
        met = took_part & (res <= bound)
        blew_up = took_part & ~ops.isfinite(res)
        spent = ops.where(took_part, steps + 1, 0)
        return {
            "x": x,
            "r": r,
            "abs_residual": res,
            "used": s["used"] + ops.max(spent, axis=0),
            "nstep": s["nstep"] + spent,
            "status": ops.where(
                met, int(Result.SUCCESSFUL), ops.where(blew_up, int(Result.NONFINITE), s["status"])
            ),
            "active": active & ~met & ~blew_up,
        }

    more = lambda s: ops.any(s["active"]) & (max_iter - s["used"] >= 2)  # room for a step and its check
    state = ops.while_loop(more, cycle, state, max_iter // 2)  # every cycle spends at least two calls
    return LoopResult(
        z=state["x"],
        nstep=state["nstep"],
        abs_residual=state["abs_residual"],
        rel_residual=state["abs_residual"] / ops.maximum(b_norm, tiny),
        status=state["status"],
        trace=None,
    )


def _at(ops: Ops, x: Array, i: Array | int) -> Array:
    """``x[:, i]`` for a possibly traced index."""
    return ops.sum(ops.where(ops.arange(x.shape[1], x) == i, x, 0.0), axis=1)


def _diag(ops: Ops, R: Array, index: Array) -> Array:
    """Diagonal of a batch of square matrices."""
    return ops.sum(ops.where(index[:, None] == index[None, :], R, 0.0), axis=2)
