"""Benchmarks (not tests): PDHG iterations on the larger Netlib LPs, and our PDHG vs OR-Tools PDLP time to
1e-4 relative KKT on a generated 1000x2000 LP (CPU), in the same run.

Usage: python benchmarks/pdhg_benchmark.py [--backend jax|torch] [--netlib-iters N] [--skip-netlib]
[--out results/pdhg] (the 1000x2000 comparison is also written as JSON + Markdown)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from deq_core.analysis.timing import interleaved_medians, write_results
from deq_opt.baselines import solve_glop, solve_pdlp
from deq_opt.baselines.pdhg import PDHGOptions
from deq_opt.datasets import random_lp, read_mps

LP_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "lp"


def _solver(backend: str):  # noqa: ANN202
    """The PDHG solve function of ``backend``."""
    if backend == "torch":
        from deq_opt.baselines.pdhg.torch import solve_pdhg_torch

        return solve_pdhg_torch
    from deq_opt.baselines.pdhg.jax import solve_pdhg_jax

    return solve_pdhg_jax


def main() -> None:
    """Print both benchmark tables."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", choices=["jax", "torch"], default="jax")
    ap.add_argument("--netlib-iters", type=int, default=100_000, help="iteration cap per Netlib instance")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--skip-netlib", action="store_true", help="only the generated 1000x2000 comparison")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the 1000x2000 comparison")
    ap.add_argument("--out", default="results/pdhg", help="where the 1000x2000 table goes (.json/.md)")
    args = ap.parse_args()
    solve = _solver(args.backend)
    if args.skip_netlib:
        print("(Netlib table skipped: --skip-netlib)")
    elif (LP_DATA / "instances.json").is_file():
        meta = json.loads((LP_DATA / "instances.json").read_text())
        large = sorted(
            (k for k, v in meta.items() if v["status"] == "optimal" and v["cols"] >= 1000),
            key=lambda k: meta[k]["cols"],
        )
        print(f"PDHG-{args.backend} on Netlib LPs with >= 1000 columns, tol={args.tol}")
        print(
            f"{'name':10s} {'rows':>6s} {'cols':>6s} {'status':16s} {'iters':>7s} {'rel err':>9s} {'sec':>7s}"
        )
        for name in large:
            lp = read_mps(LP_DATA / "instances" / f"{name}.mps")
            res = solve(lp, PDHGOptions(tol=args.tol, max_iter=args.netlib_iters))
            err = abs(res.objective - meta[name]["objective"]) / max(1.0, abs(meta[name]["objective"]))
            print(
                f"{name:10s} {lp.num_rows:6d} {lp.num_cols:6d} {res.status:16s} {res.iterations:7d} "
                f"{err:9.2e} {res.seconds:7.2f}",
                flush=True,
            )
    else:
        print(f"(Netlib data not found at {LP_DATA}; skipping that table)")
    compare_generated(solve, args)


def compare_generated(solve, args: argparse.Namespace) -> None:  # noqa: ANN001
    """Our PDHG vs PDLP to ``tol`` on the generated 1000x2000 LP: medians of interleaved repeats."""
    lp = random_lp(1000, 2000, 10_000, seed=0)
    ref = solve_glop(lp)
    print(
        f"\nRandom LP 1000x2000 (10,000 non-zeros), tol={args.tol}; GLOP objective {ref.objective:.8g} "
        f"in {ref.seconds:.2f}s"
    )
    cases = {
        f"our PDHG ({args.backend})": lambda: solve(lp, PDHGOptions(tol=args.tol, max_iter=200_000)),
        "OR-Tools PDLP (1 thread)": lambda: solve_pdlp(lp, tol=args.tol, iteration_limit=200_000),
    }
    first = time.perf_counter()
    results = {name: run() for name, run in cases.items()}  # also the warm-up (JIT compilation)
    first = time.perf_counter() - first
    medians = interleaved_medians(cases, repeats=args.repeats, warmup=0)
    rows = []
    for name, res in results.items():
        rows.append(
            {
                "problem": "random LP 1000x2000, 10k non-zeros",
                "case": name,
                "tol": args.tol,
                "status": res.status,
                "iterations": res.iterations,
                "s": medians[name],
                "vs PDLP": medians[name] / medians["OR-Tools PDLP (1 thread)"],
                "rel. objective error vs GLOP": abs(res.objective - ref.objective)
                / max(1.0, abs(ref.objective)),
            }
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "backend": args.backend,
        "first calls incl. compilation, s": first,
        "GLOP seconds": ref.seconds,
    }
    print(write_results(rows, COLUMNS, args.out, meta))


COLUMNS = ["problem", "case", "tol", "status", "iterations", "s", "vs PDLP", "rel. objective error vs GLOP"]


if __name__ == "__main__":
    main()
