"""Restarted PDHG's arithmetic, written once over the iterates' array namespace (numpy, torch or jax.numpy).

An iteration state is a dict of arrays (see :func:`initial_state`). :func:`run_checks` advances it by blocks
of ``check_every`` accepted steps, each followed by the restart and termination check. Control flow on
array values goes through a :class:`Loop`: :class:`EagerLoop` branches in Python (numpy, torch), the JAX
backend's loop is ``jax.lax.while_loop`` plus ``where``, so the same lines run eagerly and under ``jax.jit``.
The sparse products ``A v`` and ``A^T v`` come in as functions, one per backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from array_api_compat import array_namespace

from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP

__all__ = ["EagerLoop", "Loop", "initial_state", "problem_vectors", "run_checks", "solution"]

State = dict[str, Any]
MatVec = Callable[[Any], Any]
ITERATE = ("x", "y", "Ax", "ATy")


class Loop(Protocol):
    """How a backend runs loops and branches on array values, and where the step rule's scalars live."""

    def while_loop(self, cond: Callable[[Any], Any], body: Callable[[Any], Any], state: Any) -> Any:
        """``state = body(state)`` while ``cond(state)``; the last state."""

    def select(self, pred: Any, a: State, b: State) -> State:
        """``a`` where the scalar ``pred`` holds, else ``b`` (same keys)."""

    def host(self, *values: Any) -> tuple[Any, ...]:
        """The 0-d ``values`` as the scalars the step rule computes with (Python floats, or traced arrays)."""

    def where(self, pred: Any, a: Any, b: Any) -> Any:
        """Scalar ``a`` if ``pred`` else ``b``."""

    def ratio(self, a: Any, b: Any) -> Any:
        """Scalar ``a / b``, IEEE style (``inf`` or NaN) where ``b`` is 0."""


class EagerLoop:
    """The Python loop and branch of eager arrays (numpy, torch); the step rule runs on Python floats.

    Python floats instead of 0-d tensors keep a torch step from paying a dispatch per scalar operation.
    """

    def while_loop(self, cond: Callable[[Any], Any], body: Callable[[Any], Any], state: Any) -> Any:
        """``state = body(state)`` while ``cond(state)``; the last state."""
        while bool(cond(state)):
            state = body(state)
        return state

    def select(self, pred: Any, a: State, b: State) -> State:
        """``a`` if ``pred`` else ``b``."""
        return a if bool(pred) else b

    def host(self, *values: Any) -> tuple[float, ...]:
        """The values as Python floats."""
        return tuple(float(v) for v in values)

    def where(self, pred: Any, a: Any, b: Any) -> Any:
        """``a`` if ``pred`` else ``b``."""
        return a if pred else b

    def ratio(self, a: float, b: float) -> float:
        """``a / b``; ``+-inf`` or NaN where ``b`` is 0."""
        if b:
            return a / b
        return math.copysign(math.inf, a) if a else math.nan


def problem_vectors(p: ScaledLP) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(float vectors and constants, boolean flags)`` of the scaled problem, as float64/bool numpy arrays.

    Suffix ``_s``: the scaled problem's finite bounds (infinite -> 0); no suffix after ``c``: the original's.
    """
    fin = lambda v: np.where(np.isfinite(v), v, 0.0)  # noqa: E731
    floats = {
        "c": p.c,
        "lo": p.lo,
        "hi": p.hi,
        "rlo": p.row_lo,
        "rhi": p.row_hi,
        "r": p.r,
        "s": p.s,
        "lo_fin_s": fin(p.lo),
        "hi_fin_s": fin(p.hi),
        "rlo_fin_s": fin(p.row_lo),
        "rhi_fin_s": fin(p.row_hi),
        "c_o": p.orig_c,
        "lo_fin": p.orig_lo_fin,
        "hi_fin": p.orig_hi_fin,
        "rlo_fin": p.orig_row_lo_fin,
        "rhi_fin": p.orig_row_hi_fin,
        "obj_const": np.asarray(p.obj_const),
        "b_norm": np.asarray(p.b_norm),
        "c_norm": np.asarray(p.c_norm),
    }
    flags = {"lo_free": p.lo_free, "hi_free": p.hi_free, "rlo_free": p.row_lo_free, "rhi_free": p.row_hi_free}
    return (
        {key: np.asarray(v, dtype=np.float64) for key, v in floats.items()},
        {key: np.asarray(v, dtype=bool) for key, v in flags.items()},
    )


def _norm(v: Any) -> Any:
    """Euclidean norm of a vector."""
    xp = array_namespace(v)
    return xp.sqrt(xp.sum(v * v))


def _dual_parts(P: dict, g: Any, y: Any, sfx: str) -> tuple[Any, Any]:
    """(dual residual vector, bound part of the dual objective) for reduced costs ``g`` and duals ``y``."""
    xp = array_namespace(g)
    gp, gm, yp, ym = xp.maximum(g, 0.0), xp.minimum(g, 0.0), xp.maximum(y, 0.0), xp.minimum(y, 0.0)
    dres = xp.where(P["lo_free"], gp, 0.0) + xp.where(P["hi_free"], gm, 0.0)
    dobj = xp.sum(yp * P["rlo_fin" + sfx] + ym * P["rhi_fin" + sfx]) + xp.sum(
        gp * P["lo_fin" + sfx] + gm * P["hi_fin" + sfx]
    )
    return dres, dobj


def scaled_kkt(P: dict, it: State, w: Any) -> Any:
    """Primal-weighted KKT error of the scaled problem (the restart metric)."""
    xp = array_namespace(it["x"])
    pres = it["Ax"] - xp.clip(it["Ax"], P["rlo"], P["rhi"])
    dres, dobj = _dual_parts(P, P["c"] - it["ATy"], it["y"], "_s")
    gap = P["c"] @ it["x"] - dobj
    return xp.sqrt(w * xp.sum(pres * pres) + xp.sum(dres * dres) / w + gap * gap)


def original_stats(P: dict, it: State) -> Any:
    """[rel primal residual, rel dual residual, rel gap, primal obj, dual obj] on the original problem."""
    xp = array_namespace(it["x"])
    xo, yo, Axo, ATyo = it["x"] * P["s"], it["y"] * P["r"], it["Ax"] / P["r"], it["ATy"] / P["s"]
    pres = Axo - xp.clip(Axo, P["rlo"] / P["r"], P["rhi"] / P["r"])
    dres, dobj = _dual_parts(P, P["c_o"] - ATyo, yo, "")
    pobj, dobj = P["c_o"] @ xo + P["obj_const"], dobj + P["obj_const"]
    return xp.stack(
        [
            _norm(pres) / (1 + P["b_norm"]),
            _norm(dres) / (1 + P["c_norm"]),
            xp.abs(pobj - dobj) / (1 + xp.abs(pobj) + xp.abs(dobj)),
            pobj,
            dobj,
        ]
    )


def infeasibility(P: dict, d: State, eps: float) -> Any:
    """2 (primal infeasible) / 3 (unbounded) when the iterate change ``d`` is a ray certificate, else 0."""
    xp = array_namespace(d["x"])
    dxo, dyo, Adxo, ATdyo = d["x"] * P["s"], d["y"] * P["r"], d["Ax"] / P["r"], d["ATy"] / P["s"]
    sign_viol = xp.where(P["rlo_free"], xp.maximum(dyo, 0.0), 0.0) + xp.where(
        P["rhi_free"], xp.minimum(dyo, 0.0), 0.0
    )
    dres, ray_obj = _dual_parts(P, -ATdyo, dyo, "")
    primal = (ray_obj > 0) & (xp.sqrt(xp.sum(dres * dres) + xp.sum(sign_viol * sign_viol)) <= eps * ray_obj)
    row_viol = xp.where(P["rlo_free"], 0.0, xp.minimum(Adxo, 0.0)) + xp.where(
        P["rhi_free"], 0.0, xp.maximum(Adxo, 0.0)
    )
    var_viol = xp.where(P["lo_free"], 0.0, xp.minimum(dxo, 0.0)) + xp.where(
        P["hi_free"], 0.0, xp.maximum(dxo, 0.0)
    )
    cdx = P["c_o"] @ dxo
    dual = (cdx < 0) & (xp.sqrt(xp.sum(row_viol * row_viol) + xp.sum(var_viol * var_viol)) <= eps * -cdx)
    code = xp.where(primal, 2, xp.where(dual, 3, 0))
    return xp.astype(code, xp.int32)


def initial_state(P: dict, x: Any, y: Any, A: MatVec, AT: MatVec, step: float, weight: float) -> State:
    """The state before the first step, from the scaled starting point ``(x, y)``.

    Keys: the iterate (``x, y, Ax, ATy``) and the last restart point (``r_`` + those), primal weight ``w``,
    step size, accepted steps ``k`` (``k_r`` at the last restart), steps ``tries`` (accepted or rejected),
    ``status``, restart count, the step-weighted sums of the average iterate, the KKT errors the restart
    rule compares, and the reported candidate (``out_x``, ``out_y``, its original-problem ``stats``).
    """
    xp = array_namespace(x)
    scalar = lambda v: xp.asarray(v, dtype=x.dtype)  # noqa: E731
    count = lambda: xp.asarray(0, dtype=xp.int32)  # noqa: E731
    it = {"x": x, "y": y, "Ax": A(x), "ATy": AT(y)}
    w = scalar(weight)
    return {
        **it,
        **{"r_" + key: v for key, v in it.items()},
        "w": w,
        "step": scalar(step),
        "k": count(),
        "k_r": count(),
        "tries": count(),
        "status": count(),
        "n_restarts": count(),
        "weight": scalar(0.0),
        "sum_x": xp.zeros_like(x),
        "sum_y": xp.zeros_like(y),
        "kkt_r": scaled_kkt(P, it, w),
        "kkt_prev": scalar(float("inf")),
        "stats": xp.zeros(5, dtype=x.dtype),
        "out_x": x,
        "out_y": y,
    }


def run_checks(
    P: dict, st: State, A: MatVec, AT: MatVec, loop: Loop, opts: PDHGOptions, n_checks: int
) -> State:
    """Up to ``n_checks`` blocks of ``opts.check_every`` accepted steps, each followed by a restart check.

    Stops early at a status (1 optimal, 2 infeasible, 3 unbounded) or at ``opts.max_iter`` steps.
    """
    xp = array_namespace(st["x"])
    adaptive = opts.step_rule == "adaptive"

    def step(s: State) -> State:
        """One PDHG step; the adaptive rule rejects a step that is too long (the size adapts either way)."""
        eta, w = s["step"], s["w"]
        tau, sigma = eta / w, eta * w
        x = xp.clip(s["x"] - tau * (P["c"] - s["ATy"]), P["lo"], P["hi"])
        Ax = A(x)
        t = 2 * Ax - s["Ax"] - s["y"] / sigma
        y = sigma * (xp.clip(t, P["rlo"], P["rhi"]) - t)
        moved = dict(
            s,
            x=x,
            y=y,
            Ax=Ax,
            ATy=AT(y),
            k=s["k"] + 1,
            sum_x=s["sum_x"] + eta * x,
            sum_y=s["sum_y"] + eta * y,
            weight=s["weight"] + eta,
        )
        tries = s["tries"] + 1
        if not adaptive:
            return dict(moved, tries=tries)
        dx, dy = x - s["x"], y - s["y"]
        eta, w, k, dxx, dyy, inter = loop.host(eta, w, s["k"], dx @ dx, dy @ dy, dy @ (Ax - s["Ax"]))
        # PDLP's bound ||dz||_w^2 / (2 |dy^T A dx|): inf (or NaN, if nothing moved) without coupling
        limit = loop.ratio(0.5 * (w * dxx + dyy / w), abs(inter))
        kk = k + 2
        grow = (1 + kk**-opts.step_growth_exponent) * eta
        shrink = (1 - kk**-opts.step_reduction_exponent) * limit
        # a NaN bound (diverged iterates) neither shrinks nor rejects the step
        new_step = loop.where(shrink < grow, shrink, grow)
        return dict(loop.select(eta > limit, s, moved), step=new_step, tries=tries)

    def check(s: State) -> State:
        """A block of steps, then: best of current/average iterate, termination, restart, primal weight."""
        end = s["k"] + opts.check_every
        s = loop.while_loop(lambda s: s["k"] < end, step, s)
        cur = {key: s[key] for key in ITERATE}
        avg_x, avg_y = s["sum_x"] / s["weight"], s["sum_y"] / s["weight"]
        avg = {"x": avg_x, "y": avg_y, "Ax": A(avg_x), "ATy": AT(avg_y)}
        kkt_cur, kkt_avg = scaled_kkt(P, cur, s["w"]), scaled_kkt(P, avg, s["w"])
        use_avg = kkt_avg < kkt_cur
        cand, other = loop.select(use_avg, avg, cur), loop.select(use_avg, cur, avg)
        kkt_c = xp.minimum(kkt_avg, kkt_cur)
        stats, other_stats = original_stats(P, cand), original_stats(P, other)
        # PDLP also stops when the other candidate is optimal
        use_other = (xp.max(stats[:3]) > opts.tol) & (xp.max(other_stats[:3]) <= opts.tol)
        stats = xp.where(use_other, other_stats, stats)
        out = loop.select(use_other, other, cand)
        optimal = xp.astype(xp.max(stats[:3]) <= opts.tol, xp.int32)
        change = {key: cand[key] - s["r_" + key] for key in ITERATE}
        status = xp.where(optimal == 0, infeasibility(P, change, opts.infeasibility_tol), optimal)
        k, k_r = loop.host(s["k"], s["k_r"])
        restart = (status == 0) & (
            (k - k_r >= opts.beta_artificial * k)
            | (kkt_c <= opts.beta_sufficient * s["kkt_r"])
            | ((kkt_c <= opts.beta_necessary * s["kkt_r"]) & (kkt_c > s["kkt_prev"]))
        )
        dx, dy = _norm(change["x"]), _norm(change["y"])
        theta = opts.primal_weight_smoothing
        new_w = xp.where(
            (dx > 1e-10) & (dy > 1e-10),
            xp.exp(
                theta * xp.log(xp.maximum(dy, 1e-10) / xp.maximum(dx, 1e-10)) + (1 - theta) * xp.log(s["w"])
            ),
            s["w"],
        )
        w = xp.where(restart, new_w, s["w"])
        fresh = {
            **cand,
            **{"r_" + key: cand[key] for key in ITERATE},
            "sum_x": xp.zeros_like(s["sum_x"]),
            "sum_y": xp.zeros_like(s["sum_y"]),
            "weight": xp.zeros_like(s["weight"]),
            "k_r": s["k"],
            "kkt_r": scaled_kkt(P, cand, w),
        }
        return dict(
            s,
            **loop.select(restart, fresh, {key: s[key] for key in fresh}),
            status=status,
            stats=stats,
            w=w,
            out_x=out["x"],
            out_y=out["y"],
            kkt_prev=xp.where(restart, xp.inf, kkt_c),
            n_restarts=s["n_restarts"] + xp.astype(restart, xp.int32),
        )

    def more(carry: tuple[Any, State]) -> Any:
        i, s = carry
        return (i < n_checks) & (s["status"] == 0) & (s["k"] < opts.max_iter)

    return loop.while_loop(more, lambda carry: (carry[0] + 1, check(carry[1])), (0, st))[1]


def solution(P: dict, st: State) -> tuple[Any, Any, Any]:
    """The reported candidate in the original problem's units and its stats: ``(x, y, stats)``."""
    return st["out_x"] * P["s"], st["out_y"] * P["r"], st["stats"]
