"""Batched restarted GMRES for the adjoint system ``(I - J^T) y = g``, one Krylov space per sample.

Each sample's system is independent (the batch Jacobian is block diagonal), so inner products,
rotations and stopping are per sample. Arnoldi uses classical Gram-Schmidt applied twice against the
whole fixed-size basis, which keeps shapes static for ``jit``; Givens rotations give the residual.
"""

from __future__ import annotations

from collections.abc import Callable

from deq_core.engine.loop import LoopResult
from deq_core.engine.ops import Array, Ops
from deq_core.engine.solvers import _combine, _project


def gmres(
    ops: Ops,
    matvec: Callable[[Array], Array],
    b: Array,
    restart: int,
    tol: float,
    max_iter: int,
) -> LoopResult:
    """Solve ``matvec(x) = b`` per sample to relative residual ``tol`` with at most ``max_iter`` matvecs."""
    batch, n = b.shape
    m = restart
    cycles = max(1, -(-max_iter // m))
    b_norm = ops.maximum(ops.norm(b, 2), ops.tiny(b))

    def arnoldi_step(j, carry):
        V, H, cs, sn, e = carry
        w = matvec(V[:, j])
        h = _project(V, w)
        w = w - _combine(V, h)
        h2 = _project(V, w)
        w = w - _combine(V, h2)
        h = h + h2
        hn = ops.norm(w, 2)
        V = ops.set_slot(V, j + 1, w / ops.maximum(hn, ops.tiny(b))[:, None])
        index = ops.arange(m + 1, b)
        col = ops.where(index == j + 1, hn[:, None], h)

        def rotate(i, c):
            a, bb = _at(ops, c, i), _at(ops, c, i + 1)
            ci, si = _at(ops, cs, i), _at(ops, sn, i)
            c = ops.where(index == i, (ci * a + si * bb)[:, None], c)
            return ops.where(index == i + 1, (-si * a + ci * bb)[:, None], c)

        col = ops.fori_loop(0, j, rotate, col)
        a, bb = _at(ops, col, j), _at(ops, col, j + 1)
        den = ops.sqrt(a * a + bb * bb)
        ok = den > ops.tiny(b)
        c = ops.where(ok, a / ops.where(ok, den, 1.0), 1.0)
        s = ops.where(ok, bb / ops.where(ok, den, 1.0), 0.0)
        col = ops.where(index == j, den[:, None], ops.where(index == j + 1, 0.0, col))
        ej = _at(ops, e, j)
        e = ops.where(index == j + 1, (-s * ej)[:, None], ops.where(index == j, (c * ej)[:, None], e))
        H = ops.set_slot(H, j, col)  # H is stored column-major: (batch, m, m + 1)
        cs = ops.set_slot(cs, j, c)
        sn = ops.set_slot(sn, j, s)
        return V, H, cs, sn, e

    def cycle(s):
        x = s["x"]
        r = b - matvec(x)
        beta = ops.norm(r, 2)
        V = ops.set_slot(ops.zeros((batch, m + 1, n), b), 0, r / ops.maximum(beta, ops.tiny(b))[:, None])
        e = ops.where(ops.arange(m + 1, b) == 0, beta[:, None], ops.zeros((batch, m + 1), b))
        carry = (V, ops.zeros((batch, m, m + 1), b), ops.zeros((batch, m), b), ops.zeros((batch, m), b), e)
        V, H, _, _, e = ops.fori_loop(0, m, arnoldi_step, carry)
        R = ops.transpose(H)[:, :m, :]  # upper triangular (batch, m, m)
        index = ops.arange(m, b)
        diag_ok = ops.abs(_diag(R, index, ops)) > ops.tiny(b)
        R = ops.where((index[:, None] == index[None, :]) & ~diag_ok[:, None, :], 1.0, R)
        y = ops.solve(R, ops.where(diag_ok, e[:, :m], 0.0))
        active = s["active"]
        x = ops.where(active[:, None], x + _combine(V[:, :m], y), x)
        res = ops.abs(e[:, m]) / b_norm
        done = active & (res <= tol)
        k = s["k"] + 1
        return {
            "k": k,
            "x": x,
            "res": ops.where(active, res, s["res"]),
            "nstep": s["nstep"] + m * active,
            "converged": s["converged"] | done,
            "active": active & ~done & (k < cycles),
        }

    state = {
        "k": 0,
        "x": ops.zeros((batch, n), b),
        "res": ops.full((batch,), 1.0, b),
        "nstep": ops.zeros((batch,), b, dtype="int"),
        "converged": ops.zeros((batch,), b, dtype="bool"),
        "active": ~ops.zeros((batch,), b, dtype="bool"),
    }
    state = ops.while_loop(lambda s: ops.any(s["active"]), cycle, state, cycles)
    x = state["x"]
    true_abs = ops.norm(b - matvec(x), 2)
    return LoopResult(
        z=x,
        nstep=state["nstep"],
        abs_residual=true_abs,
        rel_residual=true_abs / b_norm,
        converged=state["converged"],
        nonfinite=~ops.isfinite(true_abs),
        trace=state["res"][None],
    )


def _at(ops: Ops, x: Array, i: Array | int) -> Array:
    """``x[:, i]`` for a possibly traced index."""
    return ops.sum(ops.where(ops.arange(x.shape[1], x) == i, x, 0.0), axis=1)


def _diag(R: Array, index: Array, ops: Ops) -> Array:
    """Diagonal of a batch of square matrices."""
    return ops.sum(ops.where(index[:, None] == index[None, :], R, 0.0), axis=2)
