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
