"""deq-core (JAX) against optimistix and jaxopt: forward and gradient, jitted, same problems, one run.

    python packages/deq-core/benchmarks/peers_jax.py [--repeats 7] [--out results/peers_jax]

Problem: the tanh cell ``z -> tanh(W z + x)`` (batch 64, d = 256 and 2048, spectral radius 0.9 and 0.98).
The peers solve the batch as one fixed-point problem; deq-core solves it per sample. Libraries define
tolerances differently, so each solver runs at the loosest tolerance of its own that still reaches the
achieved residual ``max_batch ||f(z) - z|| / ||f(z)|| <= 1e-4`` (equal accuracy, not equal settings). Every
row reports the median time of a jitted call over interleaved repeats, the achieved residual and the
tolerance set; gradient rows (of ``sum(z**2)`` w.r.t. ``W``) report the relative error
against long unrolled autodiff in float64. Needs ``optimistix``, ``lineax`` and ``jaxopt``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from deq_core import Implicit
from deq_core.analysis.timing import interleaved_medians, loosest_tolerance, write_results
from deq_core.jax import fixed_point

TOL = 1e-4  # the achieved residual every forward solve must reach
TOLERANCES = [TOL * 10 ** (k / 4) for k in range(16, -17, -1)]  # 1 ... 1e-8, searched per solver


def problem(d: int, rho: float, batch: int = 64, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """``(W, x)`` with ``||W||_2 = rho``."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, d))
    W = rho * W / np.linalg.norm(W, 2)
    return jnp.asarray(W, jnp.float32), jnp.asarray(rng.standard_normal((batch, d)), jnp.float32)


def cell(z, args):
    W, x = args
    return jnp.tanh(z @ W.T + x)


def residual(W, x, z) -> float:
    """``max_batch ||f(z) - z|| / ||f(z)||``."""
    fz = cell(z, (W, x))
    return float(jnp.max(jnp.linalg.norm(fz - z, axis=1) / jnp.linalg.norm(fz, axis=1)))


def exact_gradient(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d sum(z*^2) / dW in float64: z* by long Picard, then the adjoint solved exactly per sample."""
    z = np.zeros_like(x)
    for _ in range(5000):
        z_next = np.tanh(z @ W.T + x)
        if np.max(np.abs(z_next - z)) < 1e-15:
            break
        z = z_next
    grad = np.zeros_like(W)
    for zb in z:
        s = 1 - zb**2  # tanh'
        J = s[:, None] * W  # dz/dz of the cell at the fixed point
        y = np.linalg.solve(np.eye(len(zb)) - J.T, 2 * zb)
        grad += np.outer(y * s, zb)
    return grad


def solvers():
    """Each library's solve as ``tol -> ((W, x) -> z)``, un-jitted."""
    import jaxopt
    import lineax as lx
    import optimistix as optx

    def ours(kind):
        return lambda tol: (
            lambda W, x: (
                fixed_point(
                    lambda z, a: cell(z, (W, a)),
                    jnp.zeros_like(x),
                    x,
                    solver=kind,
                    tol=tol,
                    max_iter=500,
                    backward=Implicit(solver="gmres"),
                ).value
            )
        )

    def optimistix(adjoint):
        return lambda tol: lambda W, x: _optimistix_solve(optx, adjoint, tol, W, x)

    def jaxopt_solver(cls, **kw):
        return lambda tol: lambda W, x: _jaxopt_solve(cls, kw, tol, W, x)

    gmres = optx.ImplicitAdjoint(linear_solver=lx.GMRES(rtol=1e-6, atol=1e-6))
    return {
        "deq-core picard": ours("picard"),
        "deq-core anderson": ours("anderson"),
        "optimistix FixedPointIteration (default adjoint)": optimistix(optx.ImplicitAdjoint()),
        "optimistix FixedPointIteration (GMRES adjoint)": optimistix(gmres),
        "jaxopt FixedPointIteration": jaxopt_solver(jaxopt.FixedPointIteration),
        "jaxopt AndersonAcceleration": jaxopt_solver(jaxopt.AndersonAcceleration, history_size=5, ridge=1e-4),
    }


def _optimistix_solve(optx, adjoint, tol, W, x):
    """optimistix's fixed-point iteration (``rtol = tol``, ``atol = tol / 1000``)."""
    fp = optx.FixedPointIteration(rtol=tol, atol=tol * 1e-3)
    sol = optx.fixed_point(cell, fp, jnp.zeros_like(x), (W, x), max_steps=500, adjoint=adjoint, throw=False)
    return sol.value


def _jaxopt_solve(cls, kw, tol, W, x):
    """One of jaxopt's fixed-point solvers with implicit differentiation."""
    solver = cls(
        fixed_point_fun=lambda z, W, x: cell(z, (W, x)), maxiter=500, tol=tol, implicit_diff=True, **kw
    )
    return solver.run(jnp.zeros_like(x), W, x).params


def rows_for(d: int, rho: float, repeats: int, gradients: bool) -> list[dict]:
    """Forward and gradient rows for one problem."""
    W, x = problem(d, rho)
    tols = {
        k: loosest_tolerance(lambda t, m=make: residual(W, x, jax.jit(m(t))(W, x)), TOL, TOLERANCES)
        for k, make in solvers().items()
    }
    solve = {k: make(tols[k]) for k, make in solvers().items()}
    forward = {k: jax.jit(v) for k, v in solve.items()}
    calls = {k: (lambda f=f: jax.block_until_ready(f(W, x))) for k, f in forward.items()}
    medians = interleaved_medians(calls, repeats=repeats)
    rows = [
        {
            "problem": f"tanh d={d} rho={rho}",
            "case": f"solve: {k}",
            "ms": 1e3 * medians[k],
            "residual": residual(W, x, forward[k](W, x)),
            "tol set": tols[k],
        }
        for k in forward
    ]
    if gradients:
        ref = exact_gradient(np.asarray(W, np.float64), np.asarray(x, np.float64))
        skip = d > 1024  # the default optimistix adjoint materialises a dense (batch*d)^2 Jacobian
        grads = {
            k: jax.jit(jax.grad(lambda Wv, f=f: jnp.sum(f(Wv, x) ** 2)))
            for k, f in solve.items()
            if not (skip and "default adjoint" in k)
        }
        calls = {k: (lambda g=g: jax.block_until_ready(g(W))) for k, g in grads.items()}
        # the dense-Jacobian adjoint takes tens of seconds a call: one timed call is enough to rank it
        slow = {k: c for k, c in calls.items() if "default adjoint" in k}
        medians = interleaved_medians({k: c for k, c in calls.items() if k not in slow}, repeats=repeats)
        medians |= interleaved_medians(slow, repeats=1)
        for k, g in grads.items():
            err = float(np.linalg.norm(np.asarray(g(W), np.float64) - ref) / np.linalg.norm(ref))
            rows.append(
                {
                    "problem": f"tanh d={d} rho={rho}",
                    "case": f"gradient: {k}",
                    "ms": 1e3 * medians[k],
                    "grad error": err,
                }
            )
    for prefix, base in (
        ("solve: ", "jaxopt FixedPointIteration"),
        ("gradient: ", "optimistix FixedPointIteration (GMRES adjoint)"),
    ):
        base_ms = next((r["ms"] for r in rows if r["case"] == prefix + base), None)
        for r in rows:
            if base_ms and r["case"].startswith(prefix):
                r["vs reference peer"] = r["ms"] / base_ms
    return rows


COLUMNS = ["problem", "case", "ms", "vs reference peer", "residual", "tol set", "grad error"]


def main() -> None:
    """Run every row and write the JSON + Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="d=256 only, fewer repeats (a smoke run)")
    parser.add_argument("--out", default="results/peers_jax")
    args = parser.parse_args()
    rows = []
    for d in [256] if args.quick else [256, 2048]:
        for rho in (0.9, 0.98):
            rows += rows_for(d, rho, args.repeats, gradients=rho == 0.9)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    versions = {
        p: importlib.metadata.version(p) for p in ("jax", "equinox", "optimistix", "lineax", "jaxopt")
    }
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "tol": TOL,
        **versions,
        "reference peer": "jaxopt FixedPointIteration (solve), optimistix with GMRES adjoint (gradient)",
    }
    print(write_results(rows, COLUMNS, args.out, meta))


if __name__ == "__main__":
    main()
