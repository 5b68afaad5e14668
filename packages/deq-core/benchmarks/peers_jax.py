"""deq-core (JAX) against optimistix and jaxopt: forward and gradient, jitted, same problems, one run.

    python packages/deq-core/benchmarks/peers_jax.py [--repeats 7] [--out results/peers_jax]

Problem: the tanh cell ``z -> tanh(W z + x)`` (batch 64, d = 256 and 2048, spectral radius 0.9 and 0.98).
The peers solve the batch as one fixed-point problem; deq-core solves it per sample. Libraries define
tolerances differently, so each solver runs at the loosest tolerance of its own that still reaches the
achieved residual ``max_batch ||f(z) - z|| / ||f(z)|| <= 1e-4`` (equal accuracy, not equal settings). Every
row reports the median time of a jitted call over interleaved repeats, the achieved residual and the
tolerance set; gradient rows (of ``sum(z**2)`` w.r.t. ``W``) report the relative error against the exact
float64 gradient. deq-core's adjoint is Picard to 1e-5 in every row, and its gradient rows solve the forward
to 5e-5 (its own settings, tuned so that its gradient error is at most jaxopt's). Ratios: "vs jaxopt"
against jaxopt's FixedPointIteration row of the same kind (solve or gradient), "vs reference peer" against
jaxopt's FixedPointIteration (solves) and optimistix with a GMRES adjoint (gradients).

A per-sample early-exit group ("tanh rates 0.3-0.99", d = 2048, d = 256 under ``--quick``) solves
``z_i -> tanh(r_i W z_i + x_i)`` with a symmetric ``||W||_2 = 1`` and per-sample rates
``r = linspace(0.3, 0.99, 64)`` carried as the last column of the per-sample data, so samples need from a few
to about a hundred iterations. deq-core's ``fixed_point`` on the batch freezes converged samples, but XLA has
no compaction, so every iteration still evaluates the whole batch; ``jax.vmap`` of ``fixed_point`` over
single samples runs its ``while_loop`` until the slowest sample too. The peers solve the batch as one
problem. These rows add the f evaluations per sample (every sample is evaluated each iteration, so this is
the loop's iteration count). Needs ``optimistix``, ``lineax`` and ``jaxopt``.
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
ADJOINT_TOL = 1e-5  # deq-core's adjoint tolerance in every row
GRADIENT_FORWARD_TOL = (
    5e-5  # deq-core's forward tolerance in gradient rows: its error then is at most jaxopt's
)
TOLERANCES = [TOL * 10 ** (k / 4) for k in range(16, -17, -1)]  # 1 ... 1e-8, searched per solver
RATES = (0.3, 0.99)  # the per-sample contraction rates of the early-exit group, spread over the batch
JAXOPT = "jaxopt FixedPointIteration"  # the "vs jaxopt" base of solve and gradient rows


def problem(d: int, rho: float, batch: int = 64, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """``(W, x)`` with ``||W||_2 = rho``."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, d))
    W = rho * W / np.linalg.norm(W, 2)
    return jnp.asarray(W, jnp.float32), jnp.asarray(rng.standard_normal((batch, d)), jnp.float32)


def rates_problem(d: int, batch: int = 64, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """``(W, data)`` of the early-exit group: symmetric ``W`` with ``||W||_2 = 1``, ``data = [x | r]``.

    The symmetric ``W`` has spectral radius 1, so each sample's rate ``r_i`` (the last column of its row
    of ``data``) is close to its actual contraction rate; the small input ``x`` (scale 0.1) keeps tanh near
    its linear range.
    """
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, d))
    W = W + W.T
    W = W / np.linalg.norm(W, 2)
    x = 0.1 * rng.standard_normal((batch, d))
    data = np.concatenate([x, np.linspace(*RATES, batch)[:, None]], axis=1)
    return jnp.asarray(W, jnp.float32), jnp.asarray(data, jnp.float32)


def cell(z, args):
    """The tanh cell ``tanh(W z + x)`` on a batch of row vectors."""
    W, x = args
    return jnp.tanh(z @ W.T + x)


def rate_cell(z, args):
    """The early-exit group's cell ``tanh(r_i W z_i + x_i)``, with ``data = [x | r]`` one row per sample."""
    W, data = args
    return jnp.tanh(data[:, -1:] * (z @ W.T) + data[:, :-1])


def residual(W, x, z, fn=cell) -> float:
    """``max_batch ||f(z) - z|| / ||f(z)||`` for ``f = fn(., (W, x))``."""
    fz = fn(z, (W, x))
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
        """deq-core's ``fixed_point`` with ``solver=kind`` and a Picard implicit adjoint solved to 1e-5."""
        return lambda tol: (
            lambda W, x: (
                fixed_point(
                    lambda z, a: cell(z, (W, a)),
                    jnp.zeros_like(x),
                    x,
                    solver=kind,
                    tol=tol,
                    max_iter=500,
                    backward=Implicit(solver="picard", tol=ADJOINT_TOL),
                ).value
            )
        )

    def optimistix(adjoint):
        """optimistix's FixedPointIteration with the given adjoint."""
        return lambda tol: lambda W, x: _optimistix_solve(optx, adjoint, tol, W, x)

    def jaxopt_solver(cls, **kw):
        """One of jaxopt's fixed-point solvers, with the keyword options ``kw``."""
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
    """optimistix's fixed-point iteration of ``cell`` from zeros; returns ``z*``."""
    return _optimistix_run(optx, adjoint, tol, cell, W, x, jnp.zeros_like(x)).value


def _optimistix_run(optx, adjoint, tol, fn, W, x, z0):
    """optimistix's fixed-point iteration of ``fn(., (W, x))`` (``rtol = tol``, ``atol = tol / 1000``)."""
    fp = optx.FixedPointIteration(rtol=tol, atol=tol * 1e-3)
    return optx.fixed_point(fn, fp, z0, (W, x), max_steps=500, adjoint=adjoint, throw=False)


def _jaxopt_solve(cls, kw, tol, W, x):
    """One of jaxopt's fixed-point solvers on ``cell`` from zeros; returns ``z*``."""
    return _jaxopt_run(cls, kw, tol, cell, W, x, jnp.zeros_like(x)).params


def _jaxopt_run(cls, kw, tol, fn, W, x, z0):
    """One of jaxopt's fixed-point solvers on ``fn(., (W, x))`` with implicit differentiation (an OptStep)."""
    solver = cls(
        fixed_point_fun=lambda z, W, x: fn(z, (W, x)), maxiter=500, tol=tol, implicit_diff=True, **kw
    )
    return solver.run(z0, W, x)


def per_sample_solvers(d: int):
    """The early-exit group's solves as ``tol -> ((W, data) -> (z, f evaluations per sample))``, un-jitted.

    Every library evaluates the whole batch on each iteration, so the evaluations per sample are the
    number of iterations of the batch loop (the slowest sample's, for deq-core).
    """
    import jaxopt
    import optimistix as optx

    def ours(kind):
        """deq-core's ``fixed_point`` on the whole batch: converged samples are frozen, still evaluated."""

        def make(tol):
            """The solve at ``tol``."""

            def solve(W, data):
                """``(z*, iterations)``."""
                z0 = jnp.zeros((data.shape[0], d), data.dtype)
                sol = fixed_point(
                    lambda z, a: rate_cell(z, (W, a)), z0, data, solver=kind, tol=tol, max_iter=500
                )
                return sol.value, jnp.max(sol.stats.nstep)

            return solve

        return make

    def ours_vmap(kind):
        """``jax.vmap`` of deq-core's ``fixed_point`` over single samples (a batch of 1 each)."""

        def make(tol):
            """The solve at ``tol``."""

            def one(W, row):
                """One sample's ``(z*, nstep)``."""
                z0 = jnp.zeros((1, d), row.dtype)
                sol = fixed_point(
                    lambda z, a: rate_cell(z, (W, a)), z0, row[None], solver=kind, tol=tol, max_iter=500
                )
                return sol.value[0], sol.stats.nstep[0]

            def solve(W, data):
                """``(z*, iterations)``: the vmapped ``while_loop`` runs until its slowest sample."""
                z, nstep = jax.vmap(one, in_axes=(None, 0))(W, data)
                return z, jnp.max(nstep)

            return solve

        return make

    def peer(run, evals):
        """A peer's solve at ``tol``, with ``evals`` reading the evaluation count off its result."""

        def make(tol):
            """The solve at ``tol``."""

            def solve(W, data):
                """``(z*, iterations)``."""
                out = run(tol, rate_cell, W, data, jnp.zeros((data.shape[0], d), data.dtype))
                return evals(out)

            return solve

        return make

    optimistix = lambda tol, *a: _optimistix_run(optx, optx.ImplicitAdjoint(), tol, *a)
    jaxopt_fpi = lambda tol, *a: _jaxopt_run(jaxopt.FixedPointIteration, {}, tol, *a)
    jaxopt_aa = lambda tol, *a: _jaxopt_run(
        jaxopt.AndersonAcceleration, {"history_size": 5, "ridge": 1e-4}, tol, *a
    )
    from_jaxopt = lambda step: (step.params, step.state.num_fun_eval)
    return {
        "deq-core picard, fixed_point (whole batch)": ours("picard"),
        "deq-core anderson, fixed_point (whole batch)": ours("anderson"),
        "deq-core picard, vmap over samples": ours_vmap("picard"),
        "deq-core anderson, vmap over samples": ours_vmap("anderson"),
        "optimistix FixedPointIteration": peer(optimistix, lambda sol: (sol.value, sol.stats["num_steps"])),
        JAXOPT: peer(jaxopt_fpi, from_jaxopt),
        "jaxopt AndersonAcceleration": peer(jaxopt_aa, from_jaxopt),
    }


def per_sample_rows(d: int, repeats: int) -> list[dict]:
    """The early-exit group's rows: every solve at its loosest tolerance that reaches ``TOL``."""
    W, data = rates_problem(d)
    makers = per_sample_solvers(d)
    res = lambda z: residual(W, data, z, fn=rate_cell)
    tols = {
        k: loosest_tolerance(lambda t, m=make: res(jax.jit(m(t))(W, data)[0]), TOL, TOLERANCES)
        for k, make in makers.items()
    }
    forward = {k: jax.jit(make(tols[k])) for k, make in makers.items()}
    calls = {k: (lambda f=f: jax.block_until_ready(f(W, data))) for k, f in forward.items()}
    medians = interleaved_medians(calls, repeats=repeats)
    rows = []
    for k, f in forward.items():
        z, evals = f(W, data)
        rows.append(
            {
                "problem": f"tanh rates {RATES[0]}-{RATES[1]} d={d}",
                "case": f"solve: {k}",
                "ms": 1e3 * medians[k],
                "f evals/sample": int(evals),
                "residual": res(z),
                "tol set": tols[k],
            }
        )
    _ratios(rows, "solve: ", "vs jaxopt", JAXOPT)
    _ratios(rows, "solve: ", "vs reference peer", JAXOPT)
    return rows


def _ratios(rows: list[dict], prefix: str, column: str, base: str) -> None:
    """Set ``column`` of the rows whose case starts with ``prefix`` to their time over the ``base`` row's."""
    base_ms = next((r["ms"] for r in rows if r["case"] == prefix + base), None)
    for r in rows:
        if base_ms and r["case"].startswith(prefix):
            r[column] = r["ms"] / base_ms


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
        # deq-core's gradient rows tighten its forward solve so that its gradient error is at most jaxopt's
        grad_solve = {
            k: make(min(tols[k], GRADIENT_FORWARD_TOL)) if k.startswith("deq-core") else solve[k]
            for k, make in solvers().items()
            if k in solve
        }
        grads = {
            k: jax.jit(jax.grad(lambda Wv, f=f: jnp.sum(f(Wv, x) ** 2)))
            for k, f in grad_solve.items()
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
    _ratios(rows, "solve: ", "vs reference peer", JAXOPT)
    _ratios(rows, "gradient: ", "vs reference peer", "optimistix FixedPointIteration (GMRES adjoint)")
    _ratios(rows, "solve: ", "vs jaxopt", JAXOPT)
    _ratios(rows, "gradient: ", "vs jaxopt", JAXOPT)
    return rows


COLUMNS = [
    "problem",
    "case",
    "ms",
    "vs reference peer",
    "vs jaxopt",
    "f evals/sample",
    "residual",
    "tol set",
    "grad error",
]


def main() -> None:
    """Run every row and write the JSON + Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="d=256 only (a smoke run)")
    parser.add_argument("--out", default="results/peers_jax")
    args = parser.parse_args()
    dims = [256] if args.quick else [256, 2048]
    rows = []
    for d in dims:
        for rho in (0.9, 0.98):
            rows += rows_for(d, rho, args.repeats, gradients=rho == 0.9)
    rows += per_sample_rows(dims[-1], args.repeats)
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
        "vs jaxopt": f"{JAXOPT} (solve and gradient)",
        "per-sample rates": list(RATES),
    }
    print(write_results(rows, COLUMNS, args.out, meta))


if __name__ == "__main__":
    main()
