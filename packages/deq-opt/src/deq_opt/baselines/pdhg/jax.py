"""Restarted PDHG (PDLP-style) in JAX: segment-sum sparse matvecs, jit-compiled chunks of iterations."""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP, prepare
from deq_opt.baselines.result import LPResult
from deq_opt.operators.lp import LinearProgram

__all__ = ["solve_pdhg_jax"]

_STATUS = {0: "iteration_limit", 1: "optimal", 2: "infeasible", 3: "unbounded"}
_CHECKS_PER_CHUNK = 16


def _vals(d: dict) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(x, y, Ax, ATy) of an iterate dict, in that order (pytree maps sort dict keys)."""
    return d["x"], d["y"], d["Ax"], d["ATy"]


def _matvec(data: jax.Array, rows: jax.Array, cols: jax.Array, m: int, v: jax.Array) -> jax.Array:
    """CSR (as sorted COO) times vector with a segment sum."""
    return jax.ops.segment_sum(data * v[cols], rows, num_segments=m, indices_are_sorted=True)


def _problem(p: ScaledLP, dtype: Any) -> dict[str, jax.Array]:
    """Device arrays of the scaled problem."""
    f = lambda a: jnp.asarray(a, dtype=dtype)  # noqa: E731
    coo, cooT = p.A.tocoo(), p.AT.tocoo()
    return {
        "A_data": f(coo.data),
        "A_rows": jnp.asarray(coo.row, jnp.int32),
        "A_cols": jnp.asarray(coo.col, jnp.int32),
        "AT_data": f(cooT.data),
        "AT_rows": jnp.asarray(cooT.row, jnp.int32),
        "AT_cols": jnp.asarray(cooT.col, jnp.int32),
        "c": f(p.c),
        "lo": f(p.lo),
        "hi": f(p.hi),
        "rlo": f(p.row_lo),
        "rhi": f(p.row_hi),
        "r": f(p.r),
        "s": f(p.s),
        "lo_fin_s": f(np.where(np.isfinite(p.lo), p.lo, 0)),
        "hi_fin_s": f(np.where(np.isfinite(p.hi), p.hi, 0)),
        "rlo_fin_s": f(np.where(np.isfinite(p.row_lo), p.row_lo, 0)),
        "rhi_fin_s": f(np.where(np.isfinite(p.row_hi), p.row_hi, 0)),
        "c_o": f(p.orig_c),
        "lo_fin": f(p.orig_lo_fin),
        "hi_fin": f(p.orig_hi_fin),
        "rlo_fin": f(p.orig_row_lo_fin),
        "rhi_fin": f(p.orig_row_hi_fin),
        "lo_free": jnp.asarray(p.lo_free),
        "hi_free": jnp.asarray(p.hi_free),
        "rlo_free": jnp.asarray(p.row_lo_free),
        "rhi_free": jnp.asarray(p.row_hi_free),
    }


def _dual_parts(g: jax.Array, y: jax.Array, P: dict, sfx: str) -> tuple[jax.Array, jax.Array]:
    """(dual residual vector, bound part of the dual objective) for reduced costs ``g`` and duals ``y``."""
    dres = jnp.where(P["lo_free"], jnp.maximum(g, 0), 0) + jnp.where(P["hi_free"], jnp.minimum(g, 0), 0)
    dobj = jnp.sum(jnp.maximum(y, 0) * P["rlo_fin" + sfx] + jnp.minimum(y, 0) * P["rhi_fin" + sfx]) + jnp.sum(
        jnp.maximum(g, 0) * P["lo_fin" + sfx] + jnp.minimum(g, 0) * P["hi_fin" + sfx]
    )
    return dres, dobj


def _scaled_kkt(
    P: dict, x: jax.Array, y: jax.Array, Ax: jax.Array, ATy: jax.Array, w: jax.Array
) -> jax.Array:
    """Primal-weighted KKT error of the scaled problem (the restart metric)."""
    pres = Ax - jnp.clip(Ax, P["rlo"], P["rhi"])
    dres, dobj = _dual_parts(P["c"] - ATy, y, P, "_s")
    gap = P["c"] @ x - dobj
    return jnp.sqrt(w * jnp.sum(pres**2) + jnp.sum(dres**2) / w + gap**2)


def _orig_stats(
    P: dict, consts: tuple, x: jax.Array, y: jax.Array, Ax: jax.Array, ATy: jax.Array
) -> jax.Array:
    """[rel primal residual, rel dual residual, rel gap, primal obj, dual obj] on the original problem."""
    obj_const, b_norm, c_norm = consts
    xo, yo, Axo, ATyo = x * P["s"], y * P["r"], Ax / P["r"], ATy / P["s"]
    pres = Axo - jnp.clip(Axo, P["rlo"] / P["r"], P["rhi"] / P["r"])
    dres, dobj = _dual_parts(P["c_o"] - ATyo, yo, P, "")
    pobj, dobj = P["c_o"] @ xo + obj_const, dobj + obj_const
    return jnp.stack(
        [
            jnp.linalg.norm(pres) / (1 + b_norm),
            jnp.linalg.norm(dres) / (1 + c_norm),
            jnp.abs(pobj - dobj) / (1 + jnp.abs(pobj) + jnp.abs(dobj)),
            pobj,
            dobj,
        ]
    )


def _infeasibility(
    P: dict, dx: jax.Array, dy: jax.Array, Adx: jax.Array, ATdy: jax.Array, eps: float
) -> jax.Array:
    """2 (primal infeasible) / 3 (unbounded) when the iterate change is a ray certificate, else 0."""
    dxo, dyo, Adxo, ATdyo = dx * P["s"], dy * P["r"], Adx / P["r"], ATdy / P["s"]
    g = -ATdyo
    sign_viol = jnp.where(P["rlo_free"], jnp.maximum(dyo, 0), 0) + jnp.where(
        P["rhi_free"], jnp.minimum(dyo, 0), 0
    )
    dres, ray_obj = _dual_parts(g, dyo, P, "")
    primal_inf = (ray_obj > 0) & (jnp.sqrt(jnp.sum(dres**2) + jnp.sum(sign_viol**2)) <= eps * ray_obj)
    zero = jnp.zeros_like(Adxo)
    row_viol = Adxo - jnp.clip(
        Adxo, jnp.where(P["rlo_free"], -jnp.inf, zero), jnp.where(P["rhi_free"], jnp.inf, zero)
    )
    zx = jnp.zeros_like(dxo)
    var_viol = dxo - jnp.clip(
        dxo, jnp.where(P["lo_free"], -jnp.inf, zx), jnp.where(P["hi_free"], jnp.inf, zx)
    )
    cdx = P["c_o"] @ dxo
    dual_inf = (cdx < 0) & (jnp.sqrt(jnp.sum(row_viol**2) + jnp.sum(var_viol**2)) <= eps * -cdx)
    return jnp.where(primal_inf, 2, jnp.where(dual_inf, 3, 0))


@functools.partial(jax.jit, static_argnames=("m", "n", "opts", "n_checks"))
def _chunk(P: dict, st: dict, consts: tuple, *, m: int, n: int, opts: PDHGOptions, n_checks: int) -> dict:
    """Run up to ``n_checks`` blocks of ``opts.check_every`` PDHG steps, each followed by a restart check.

    The step size (in ``st``) and ``consts`` (objective constant, norms of b and c) are traced: problems of
    one shape share one compilation.
    """
    A = functools.partial(_matvec, P["A_data"], P["A_rows"], P["A_cols"], m)
    AT = functools.partial(_matvec, P["AT_data"], P["AT_rows"], P["AT_cols"], n)

    adaptive = opts.step_rule == "adaptive"

    def pdhg_step(s: dict) -> dict:
        eta = s["step"]
        tau, sigma = eta / s["w"], eta * s["w"]
        x = jnp.clip(s["x"] - tau * (P["c"] - s["ATy"]), P["lo"], P["hi"])
        Ax = A(x)
        t = 2 * Ax - s["Ax"] - s["y"] / sigma
        y = sigma * (jnp.clip(t, P["rlo"], P["rhi"]) - t)
        if adaptive:
            dx, dy = x - s["x"], y - s["y"]
            move = 0.5 * (s["w"] * (dx @ dx) + (dy @ dy) / s["w"])
            inter = jnp.abs(dy @ (Ax - s["Ax"]))
            limit = jnp.where(inter > 0, move / jnp.where(inter > 0, inter, 1), jnp.inf)
            kk = (s["k"] + 2).astype(eta.dtype)
            new_step = jnp.fmin(  # a NaN bound (diverged iterates) neither shrinks nor rejects the step
                (1 + kk**-opts.step_growth_exponent) * eta, (1 - kk**-opts.step_reduction_exponent) * limit
            )
            accept = ~(eta > limit)
        else:
            new_step, accept = eta, jnp.asarray(True)
        ATy = AT(y)
        new = dict(
            s,
            x=x,
            y=y,
            Ax=Ax,
            ATy=ATy,
            k=s["k"] + 1,
            done=s["done"] + 1,
            sum_x=s["sum_x"] + eta * x,
            sum_y=s["sum_y"] + eta * y,
            weight=s["weight"] + eta,
        )
        out = jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, s)
        return dict(out, step=new_step, rejected=s["rejected"] + (~accept).astype(jnp.int32))

    def check(s: dict) -> dict:
        s = jax.lax.while_loop(
            lambda s: s["done"] < opts.check_every, pdhg_step, dict(s, done=jnp.zeros_like(s["done"]))
        )
        cur = {key: s[key] for key in ("x", "y", "Ax", "ATy")}
        avg = {"x": s["sum_x"] / s["weight"], "y": s["sum_y"] / s["weight"]}
        avg["Ax"], avg["ATy"] = A(avg["x"]), AT(avg["y"])
        kkt_cur = _scaled_kkt(P, *_vals(cur), s["w"])
        kkt_avg = _scaled_kkt(P, *_vals(avg), s["w"])
        use_avg = kkt_avg < kkt_cur
        cand = jax.tree.map(lambda a, b: jnp.where(use_avg, a, b), avg, cur)
        other = jax.tree.map(lambda a, b: jnp.where(use_avg, b, a), avg, cur)
        kkt_c = jnp.minimum(kkt_avg, kkt_cur)
        stats = _orig_stats(P, consts, *_vals(cand))
        other_stats = _orig_stats(P, consts, *_vals(other))
        use_other = (jnp.max(stats[:3]) > opts.tol) & (jnp.max(other_stats[:3]) <= opts.tol)
        stats = jnp.where(use_other, other_stats, stats)
        out_xy = jax.tree.map(lambda a, b: jnp.where(use_other, a, b), other, cand)
        status = jnp.where(jnp.max(stats[:3]) <= opts.tol, 1, 0)
        infeas = _infeasibility(
            P,
            cand["x"] - s["r_x"],
            cand["y"] - s["r_y"],
            cand["Ax"] - s["r_Ax"],
            cand["ATy"] - s["r_ATy"],
            opts.infeasibility_tol,
        )
        status = jnp.where(status == 0, infeas, status).astype(jnp.int32)
        restart = (status == 0) & (
            (s["k"] - s["k_r"] >= opts.beta_artificial * s["k"])
            | (kkt_c <= opts.beta_sufficient * s["kkt_r"])
            | ((kkt_c <= opts.beta_necessary * s["kkt_r"]) & (kkt_c > s["kkt_prev"]))
        )
        dx = jnp.linalg.norm(cand["x"] - s["r_x"])
        dy = jnp.linalg.norm(cand["y"] - s["r_y"])
        theta = opts.primal_weight_smoothing
        new_w = jnp.where(
            (dx > 1e-10) & (dy > 1e-10),
            jnp.exp(
                theta * jnp.log(jnp.maximum(dy, 1e-10) / jnp.maximum(dx, 1e-10))
                + (1 - theta) * jnp.log(s["w"])
            ),
            s["w"],
        )
        w = jnp.where(restart, new_w, s["w"])
        out = dict(
            s,
            status=status,
            stats=stats,
            w=w,
            out_x=out_xy["x"],
            out_y=out_xy["y"],
            kkt_prev=jnp.where(restart, jnp.inf, kkt_c),
            n_restarts=s["n_restarts"] + restart.astype(jnp.int32),
        )
        for key in ("x", "y", "Ax", "ATy"):
            out[key] = jnp.where(restart, cand[key], s[key])
            out["r_" + key] = jnp.where(restart, cand[key], s["r_" + key])
        for key in ("sum_x", "sum_y", "weight"):
            out[key] = jnp.where(restart, jnp.zeros_like(s[key]), s[key])
        out["k_r"] = jnp.where(restart, s["k"], s["k_r"])
        out["kkt_r"] = jnp.where(restart, _scaled_kkt(P, *_vals(cand), w), s["kkt_r"])
        return out

    def cond(carry: tuple) -> jax.Array:
        i, s = carry
        return (i < n_checks) & (s["status"] == 0) & (s["k"] < opts.max_iter)

    def body(carry: tuple) -> tuple:
        i, s = carry
        return i + 1, check(s)

    return jax.lax.while_loop(cond, body, (0, st))[1]


def solve_pdhg_jax(
    lp: LinearProgram,
    options: PDHGOptions | None = None,
    *,
    x0: np.ndarray | None = None,
    y0: np.ndarray | None = None,
    dtype: Any = "float64",
) -> LPResult:
    """Solve ``lp`` with restarted PDHG in JAX (float64 by default, enabled locally); optional warm start."""
    opts = options or PDHGOptions()
    start = time.perf_counter()
    p = prepare(lp, opts)
    m, n = lp.shape
    with jax.enable_x64(np.dtype(dtype) == np.float64):
        P = _problem(p, dtype)
        f = lambda a: jnp.asarray(a, dtype=dtype)  # noqa: E731
        x = f(np.zeros(n) if x0 is None else np.clip(_check(x0, n, "x0") / p.s, p.lo, p.hi))
        y = f(np.zeros(m) if y0 is None else _check(y0, m, "y0") / p.r)
        A = functools.partial(_matvec, P["A_data"], P["A_rows"], P["A_cols"], m)
        AT = functools.partial(_matvec, P["AT_data"], P["AT_rows"], P["AT_cols"], n)
        Ax, ATy = A(x), AT(y)
        w = f(p.primal_weight)
        st = {
            "x": x,
            "y": y,
            "Ax": Ax,
            "ATy": ATy,
            "w": w,
            "k": jnp.asarray(0, jnp.int32),
            "k_r": jnp.asarray(0, jnp.int32),
            "done": jnp.asarray(0, jnp.int32),
            "rejected": jnp.asarray(0, jnp.int32),
            "weight": f(0.0),
            "status": jnp.asarray(0, jnp.int32),
            "n_restarts": jnp.asarray(0, jnp.int32),
            "kkt_r": _scaled_kkt(P, x, y, Ax, ATy, w),
            "kkt_prev": f(np.inf),
            "stats": jnp.zeros(5, dtype),
            "out_x": x,
            "out_y": y,
        }
        for key, val in (("x", x), ("y", y), ("Ax", Ax), ("ATy", ATy)):
            st["r_" + key] = val
        st["sum_x"], st["sum_y"] = jnp.zeros_like(x), jnp.zeros_like(y)
        consts = tuple(f(v) for v in (p.obj_const, p.b_norm, p.c_norm))
        st["step"] = f(p.step)
        with tqdm(total=opts.max_iter, disable=not opts.progress, desc=f"PDHG-jax {lp.name}") as bar:
            while True:
                st = _chunk(P, st, consts, m=m, n=n, opts=opts, n_checks=_CHECKS_PER_CHUNK)
                k, status = int(st["k"]), int(st["status"])
                bar.update(k - bar.n)
                if status != 0 or k >= opts.max_iter:
                    break
        x_out = np.asarray(st["out_x"] * P["s"], dtype=np.float64)
        y_out = np.asarray(st["out_y"] * P["r"], dtype=np.float64)
        stats = np.asarray(st["stats"], dtype=np.float64)
        restarts, rejected = int(st["n_restarts"]), int(st["rejected"])
    kkt = {
        "rel_primal": stats[0],
        "rel_dual": stats[1],
        "rel_gap": stats[2],
        "dual_objective": stats[4],
        "restarts": restarts,
        "rejected_steps": rejected,
    }
    return LPResult(
        _STATUS[status],
        float(stats[3]),
        x_out,
        y_out,
        k,
        time.perf_counter() - start,
        "pdhg-jax",
        {key: float(v) for key, v in kkt.items()},
    )


def _check(v: np.ndarray, size: int, name: str) -> np.ndarray:
    """A finite float64 warm-start vector of the right length."""
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise ValueError(f"solve_pdhg_jax: {name} must be a finite vector of shape ({size},), got {v.shape}")
    return v
