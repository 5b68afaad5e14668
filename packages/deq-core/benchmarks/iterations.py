"""Iterations each solver needs to reach a tolerance on the conformance catalogue, in the installed backends.

    python packages/deq-core/benchmarks/iterations.py [--tol 1e-8]

Prints one row per (problem, solver): the maximum and mean ``nstep`` over the batch, per backend.
"""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np

from deq_core import Anderson, Broyden, Picard
from deq_core.testing import problems
from deq_core.testing.backends import BACKENDS

SOLVERS = {"picard": Picard(), "anderson(m=5)": Anderson(), "broyden(m=30)": Broyden()}


def main() -> None:
    """Print the iteration table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--max-iter", type=int, default=2000)
    args = parser.parse_args()
    installed = [BACKENDS[n]() for n in BACKENDS if importlib.util.find_spec(n) is not None]
    catalogue = [*problems.catalogue(), problems.tanh(rate=0.99, seed=3)]
    catalogue[-1].name = "tanh(rate=0.99)"
    print(f"| problem | solver | {' | '.join(f'{b.name} nstep max/mean' for b in installed)} |")
    print("|---|---|" + "---|" * len(installed))
    for problem in catalogue:
        for label, solver in SOLVERS.items():
            cells = []
            for backend in installed:
                f = problem.make_f(backend.xp)
                params = {k: backend.asarray(v) for k, v in problem.params.items()}
                sol = backend.fixed_point(
                    lambda z, a, f=f, p=params: f(z, a, p),
                    backend.asarray(problem.z0),
                    backend.asarray(problem.args),
                    solver=solver,
                    tol=args.tol,
                    max_iter=args.max_iter,
                )
                nstep = backend.numpy(sol.stats.nstep)
                ok = "" if np.all(backend.numpy(sol.stats.converged)) else " (not converged)"
                cells.append(f"{nstep.max()} / {nstep.mean():.1f}{ok}")
            print(f"| {problem.name} | {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
