"""Benchmark helpers: interleaved repeated timing with medians, and the JSON + Markdown results table.

Interleaving (case A, case B, case A, case B, ...) spreads the machine's load changes over every case,
so the ratio of two medians is fair even on a busy machine; absolute times are for ratios only.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from deq_core.files import atomic_write


def interleaved_medians(
    cases: Mapping[str, Callable[[], Any]],
    repeats: int = 7,
    warmup: int = 1,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """Median seconds of each zero-argument callable, timed ``repeats`` times in interleaved rounds."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
            sync()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def loosest_tolerance(
    residual_at: Callable[[float], float], target: float, tolerances: Sequence[float]
) -> float:
    """The loosest of ``tolerances`` at which a solve still reaches an achieved residual ``<= target``.

    Libraries define their stopping tolerance differently (absolute or relative, per sample or over the whole
    batch, on the step or on the residual), so equal nominal tolerances are unequal accuracies. Calibrating
    each solver to the same achieved residual makes their times comparable. ``residual_at(tol)`` runs the
    solve at ``tol`` and returns its achieved residual; it is assumed to shrink as ``tol`` does, so the
    search is a bisection over the sorted ``tolerances``.
    """
    ordered = sorted(tolerances, reverse=True)
    if residual_at(ordered[-1]) > target:
        raise ValueError(f"no tolerance down to {ordered[-1]:.1e} reaches the residual {target:.1e}")
    lo, hi = 0, len(ordered) - 1  # ordered[hi] is known to reach the target
    while lo < hi:
        mid = (lo + hi) // 2
        if residual_at(ordered[mid]) <= target:
            hi = mid
        else:
            lo = mid + 1
    return ordered[hi]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` restricted to ``columns`` (missing values left blank)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], path: str | Path, meta: dict
) -> str:
    """Write ``path``.json (rows + meta) and ``path``.md (the table) atomically; return the table."""
    path = Path(path)
    table = markdown_table(rows, columns)
    atomic_write(
        path.with_suffix(".json"), json.dumps({"meta": meta, "rows": list(rows)}, indent=2, default=str)
    )
    atomic_write(path.with_suffix(".md"), table + "\n")
    return table
