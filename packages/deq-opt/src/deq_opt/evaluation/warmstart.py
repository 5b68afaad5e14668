"""PDLP warm-started from predicted solutions vs a cold start: iterations and seconds per tolerance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from deq_opt.baselines.ortools_lp import solve_pdlp
from deq_opt.operators.lp import LinearProgram

__all__ = ["warm_start_comparison"]


def warm_start_comparison(
    lps: Sequence[LinearProgram],
    starts: Mapping[str, tuple[np.ndarray | None, np.ndarray | None]],
    tolerances: Sequence[float] = (1e-4, 1e-6),
    iteration_limit: int = 200_000,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{start: {f"{tol:g}": {iterations, seconds, solved}}}``: means over ``lps`` of 1-thread PDLP runs.

    ``starts`` maps a name to ``(x0, y0)`` arrays of shape (B, n) and (B, m) (``None`` = zeros); include
    ``"cold": (None, None)`` for the baseline.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, (x0, y0) in starts.items():
        out[name] = {}
        for tol in tolerances:
            runs = [
                solve_pdlp(
                    lp,
                    tol=tol,
                    iteration_limit=iteration_limit,
                    x0=None if x0 is None else x0[k],
                    y0=None if y0 is None else y0[k],
                )
                for k, lp in enumerate(lps)
            ]
            out[name][f"{tol:g}"] = {
                "iterations": float(np.mean([r.iterations for r in runs])),
                "seconds": float(np.mean([r.seconds for r in runs])),
                "solved": float(np.mean([r.status == "optimal" for r in runs])),
            }
    return out
