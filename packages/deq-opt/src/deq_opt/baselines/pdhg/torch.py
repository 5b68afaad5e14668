"""Restarted PDHG (PDLP-style) in torch: sparse CSR matvecs with a precomputed transpose, any device."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP, prepare
from deq_opt.baselines.result import LPResult
from deq_opt.operators.lp import LinearProgram

__all__ = ["solve_pdhg_torch"]

_STATUS = {0: "iteration_limit", 1: "optimal", 2: "infeasible", 3: "unbounded"}
_KEYS = ("x", "y", "Ax", "ATy")


def _csr(M: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.as_tensor(M.indptr, dtype=torch.int64),
            torch.as_tensor(M.indices, dtype=torch.int64),
            torch.as_tensor(M.data),
            size=M.shape,
            dtype=dtype,
            device=device,
            check_invariants=False,
        )


class _Problem:
    """Device tensors of the scaled problem."""

    def __init__(self, p: ScaledLP, device: torch.device, dtype: torch.dtype) -> None:
        """Move the scaled problem to ``device``/``dtype``."""
        f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), device=device).to(dtype)  # noqa: E731
        b = lambda a: torch.as_tensor(np.asarray(a, dtype=bool), device=device)  # noqa: E731
        fin = lambda a: np.where(np.isfinite(a), a, 0.0)  # noqa: E731
        self.A, self.AT = _csr(p.A, device, dtype), _csr(p.AT, device, dtype)
        self.c, self.lo, self.hi, self.rlo, self.rhi = f(p.c), f(p.lo), f(p.hi), f(p.row_lo), f(p.row_hi)
        self.r, self.s = f(p.r), f(p.s)
        self.rlo_o, self.rhi_o = f(p.row_lo / p.r), f(p.row_hi / p.r)
        self.fin_s = (f(fin(p.row_lo)), f(fin(p.row_hi)), f(fin(p.lo)), f(fin(p.hi)))
        self.fin_o = (f(p.orig_row_lo_fin), f(p.orig_row_hi_fin), f(p.orig_lo_fin), f(p.orig_hi_fin))
        self.c_o = f(p.orig_c)
        self.lo_free, self.hi_free = b(p.lo_free), b(p.hi_free)
        self.rlo_free, self.rhi_free = b(p.row_lo_free), b(p.row_hi_free)
        self.obj_const, self.b_norm, self.c_norm = p.obj_const, p.b_norm, p.c_norm

    def dual_parts(self, g: torch.Tensor, y: torch.Tensor, fins: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """(dual residual vector, bound part of the dual objective) for reduced costs g and duals y."""
        rlo, rhi, lo, hi = fins
        gp, gm, yp, ym = g.clamp(min=0), g.clamp(max=0), y.clamp(min=0), y.clamp(max=0)
        dres = torch.where(self.lo_free, gp, 0) + torch.where(self.hi_free, gm, 0)
        dobj = (yp * rlo + ym * rhi).sum() + (gp * lo + gm * hi).sum()
        return dres, dobj

    def scaled_kkt(self, it: dict, w: float) -> float:
        """Primal-weighted KKT error of the scaled problem (the restart metric)."""
        pres = it["Ax"] - torch.clamp(it["Ax"], self.rlo, self.rhi)
        dres, dobj = self.dual_parts(self.c - it["ATy"], it["y"], self.fin_s)
        gap = self.c @ it["x"] - dobj
        return math.sqrt(float(w * pres.square().sum() + dres.square().sum() / w + gap**2))

    def orig_stats(self, it: dict) -> list[float]:
        """[rel primal residual, rel dual residual, rel gap, primal obj, dual obj] on the original problem."""
        xo, yo, Axo, ATyo = it["x"] * self.s, it["y"] * self.r, it["Ax"] / self.r, it["ATy"] / self.s
        pres = Axo - torch.clamp(Axo, self.rlo_o, self.rhi_o)
        dres, dobj = self.dual_parts(self.c_o - ATyo, yo, self.fin_o)
        pobj, dobj = float(self.c_o @ xo) + self.obj_const, float(dobj) + self.obj_const
        return [
            float(pres.norm()) / (1 + self.b_norm),
            float(dres.norm()) / (1 + self.c_norm),
            abs(pobj - dobj) / (1 + abs(pobj) + abs(dobj)),
            pobj,
            dobj,
        ]

    def infeasibility(self, d: dict, eps: float) -> int:
        """2 (primal infeasible) / 3 (unbounded) when the iterate change d is a ray certificate, else 0."""
        dxo, dyo, Adxo, ATdyo = d["x"] * self.s, d["y"] * self.r, d["Ax"] / self.r, d["ATy"] / self.s
        sign_viol = torch.where(self.rlo_free, dyo.clamp(min=0), 0) + torch.where(
            self.rhi_free, dyo.clamp(max=0), 0
        )
        dres, ray_obj = self.dual_parts(-ATdyo, dyo, self.fin_o)
        ray_obj = float(ray_obj)
        if ray_obj > 0 and math.sqrt(float(dres.square().sum() + sign_viol.square().sum())) <= eps * ray_obj:
            return 2
        row_viol = torch.where(self.rlo_free, 0, Adxo.clamp(max=0)) + torch.where(
            self.rhi_free, 0, Adxo.clamp(min=0)
        )
        var_viol = torch.where(self.lo_free, 0, dxo.clamp(max=0)) + torch.where(
            self.hi_free, 0, dxo.clamp(min=0)
        )
        cdx = float(self.c_o @ dxo)
        if cdx < 0 and math.sqrt(float(row_viol.square().sum() + var_viol.square().sum())) <= eps * -cdx:
            return 3
        return 0


def solve_pdhg_torch(
    lp: LinearProgram,
    options: PDHGOptions | None = None,
    *,
    x0: np.ndarray | None = None,
    y0: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> LPResult:
    """Solve ``lp`` with restarted PDHG in torch on ``device`` (float64 by default); optional warm start."""
    opts = options or PDHGOptions()
    start = time.perf_counter()
    p = prepare(lp, opts)
    P = _Problem(p, torch.device(device), dtype)
    m, n = lp.shape
    tens = lambda a: torch.as_tensor(a, dtype=dtype, device=P.c.device)  # noqa: E731
    x = tens(np.zeros(n) if x0 is None else np.clip(_check(x0, n, "x0") / p.s, p.lo, p.hi))
    y = tens(np.zeros(m) if y0 is None else _check(y0, m, "y0") / p.r)
    cur = {"x": x, "y": y, "Ax": torch.mv(P.A, x), "ATy": torch.mv(P.AT, y)}
    w = float(p.primal_weight)
    last = dict(cur)
    sums = {"x": torch.zeros_like(x), "y": torch.zeros_like(y)}
    weight, k, k_r, restarts, rejected, status = 0.0, 0, 0, 0, 0, 0
    kkt_r, kkt_prev = P.scaled_kkt(cur, w), math.inf
    out, stats = cur, [math.nan] * 5
    step = float(p.step)
    adaptive = opts.step_rule == "adaptive"
    with tqdm(total=opts.max_iter, disable=not opts.progress, desc=f"PDHG-torch {lp.name}") as bar:
        while status == 0 and k < opts.max_iter:
            done = 0
            while done < opts.check_every:
                eta = step
                tau, sigma = eta / w, eta * w
                xn = torch.clamp(cur["x"] - tau * (P.c - cur["ATy"]), P.lo, P.hi)
                Axn = torch.mv(P.A, xn)
                t = 2 * Axn - cur["Ax"] - cur["y"] / sigma
                yn = sigma * (torch.clamp(t, P.rlo, P.rhi) - t)
                if adaptive:
                    dx, dy = xn - cur["x"], yn - cur["y"]
                    limit = _step_limit(dx, dy, Axn - cur["Ax"], w)
                    kk = k + done + 2
                    step = min(  # a NaN bound (diverged iterates) neither shrinks nor rejects the step
                        (1 + kk**-opts.step_growth_exponent) * eta,
                        (1 - kk**-opts.step_reduction_exponent) * limit,
                    )
                    if eta > limit:
                        rejected += 1
                        continue
                cur = {"x": xn, "y": yn, "Ax": Axn, "ATy": torch.mv(P.AT, yn)}
                sums["x"].add_(xn, alpha=eta)
                sums["y"].add_(yn, alpha=eta)
                weight += eta
                done += 1
            k += opts.check_every
            bar.update(opts.check_every)
            avg = {"x": sums["x"] / weight, "y": sums["y"] / weight}
            avg["Ax"], avg["ATy"] = torch.mv(P.A, avg["x"]), torch.mv(P.AT, avg["y"])
            kkt_cur, kkt_avg = P.scaled_kkt(cur, w), P.scaled_kkt(avg, w)
            cand, kkt_c = (avg, kkt_avg) if kkt_avg < kkt_cur else (cur, kkt_cur)
            other = cur if cand is avg else avg
            stats, out = P.orig_stats(cand), cand
            if max(stats[:3]) > opts.tol:  # PDLP also stops when the other candidate is optimal
                other_stats = P.orig_stats(other)
                if max(other_stats[:3]) <= opts.tol:
                    stats, out = other_stats, other
            if max(stats[:3]) <= opts.tol:
                status = 1
                break
            status = P.infeasibility({key: cand[key] - last[key] for key in _KEYS}, opts.infeasibility_tol)
            if status:
                break
            restart = (
                k - k_r >= opts.beta_artificial * k
                or kkt_c <= opts.beta_sufficient * kkt_r
                or (kkt_c <= opts.beta_necessary * kkt_r and kkt_c > kkt_prev)
            )
            if not restart:
                kkt_prev = kkt_c
                continue
            dx, dy = float((cand["x"] - last["x"]).norm()), float((cand["y"] - last["y"]).norm())
            if dx > 1e-10 and dy > 1e-10:
                theta = opts.primal_weight_smoothing
                w = math.exp(theta * math.log(dy / dx) + (1 - theta) * math.log(w))
            cur, last = dict(cand), dict(cand)
            sums = {"x": torch.zeros_like(x), "y": torch.zeros_like(y)}
            weight, k_r, restarts = 0.0, k, restarts + 1
            kkt_r, kkt_prev = P.scaled_kkt(cand, w), math.inf
    x_out = (out["x"] * P.s).detach().to("cpu", torch.float64).numpy()
    y_out = (out["y"] * P.r).detach().to("cpu", torch.float64).numpy()
    kkt = {
        "rel_primal": stats[0],
        "rel_dual": stats[1],
        "rel_gap": stats[2],
        "dual_objective": stats[4],
        "restarts": float(restarts),
        "rejected_steps": float(rejected),
    }
    return LPResult(
        _STATUS[status], float(stats[3]), x_out, y_out, k, time.perf_counter() - start, "pdhg-torch", kkt
    )


def _step_limit(dx: torch.Tensor, dy: torch.Tensor, Adx: torch.Tensor, w: float) -> float:
    """PDLP's step bound ``||dz||_w^2 / (2 |dy^T A dx|)`` of a trial step (inf if no coupling)."""
    move2, inter = torch.stack([w * torch.dot(dx, dx) + torch.dot(dy, dy) / w, torch.dot(dy, Adx)]).tolist()
    return 0.5 * move2 / abs(inter) if inter != 0 else math.inf


def _check(v: np.ndarray, size: int, name: str) -> np.ndarray:
    """A finite float64 warm-start vector of the right length."""
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise ValueError(
            f"solve_pdhg_torch: {name} must be a finite vector of shape ({size},), got {v.shape}"
        )
    return v
