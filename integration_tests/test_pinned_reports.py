"""Every task of every installed domain, run through the ``deq`` CLI at seed 0 in smoke size, against its pin.

Each task runs ``deq run DOMAIN --task TASK --quick --seed 0 --threads 1`` with ``DEQ_SMOKE=1`` in a
subprocess, two at a time. One thread makes a run bitwise repeatable (XLA's multi-threaded CPU kernels split
their sums by the thread count, so they round differently). Its report must follow the schema, its plot
must exist, each number in it except timings must equal the pinned report
(``pinned/<backend>/<domain>-<task>.json``) to the printed precision (4 significant digits). The pins were
taken from the main that issue #13 started from (the JAX pins again with one thread), so a refactor that
changes what users see fails here; a deliberate change re-pins with

    python integration_tests/test_pinned_reports.py --write RUNS_DIR

where ``RUNS_DIR/<backend>/<domain>-<task>/report.json`` are the new runs, and says why in its commit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

PINNED = Path(__file__).resolve().parent / "pinned"
# Keys whose values are measured times (or ratios of them), paths or versions: not pinned.
UNPINNED = ("seconds", "speedup", "time_to_target", "versions", "cache_dir")


def comparable(report: Any) -> Any:
    """``report`` without timings and versions, paths masked, numbers rounded to 4 significant digits."""
    if isinstance(report, dict):
        return {
            key: comparable(value)
            for key, value in report.items()
            if not any(word in key for word in UNPINNED)
        }
    if isinstance(report, list):
        return [comparable(value) for value in report]
    if isinstance(report, float):
        return f"{report:.4g}"
    if isinstance(report, str) and os.path.isabs(report):
        return "<path>"  # where this run wrote a file (figures, datasets)
    return report


def differences(actual: Any, pinned: Any, path: str = "") -> list[str]:
    """Lines ``path: actual != pinned`` for every place the two comparable reports differ."""
    if isinstance(actual, dict) and isinstance(pinned, dict):
        lines = [f"{path}/{key}: missing" for key in pinned.keys() - actual.keys()]
        lines += [f"{path}/{key}: not pinned" for key in actual.keys() - pinned.keys()]
        for key in actual.keys() & pinned.keys():
            lines += differences(actual[key], pinned[key], f"{path}/{key}")
        return lines
    if isinstance(actual, list) and isinstance(pinned, list) and len(actual) == len(pinned):
        return [
            line
            for i, (a, p) in enumerate(zip(actual, pinned, strict=True))
            for line in differences(a, p, f"{path}[{i}]")
        ]
    return [] if actual == pinned else [f"{path}: {actual!r} != pinned {pinned!r}"]


def write_pins(runs: Path) -> None:
    """Pin the reports under ``runs/<backend>/<domain>-<task>/report.json``."""
    for report in sorted(runs.glob("*/*/report.json")):
        target = PINNED / report.parent.parent.name / f"{report.parent.name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        pinned = comparable(json.loads(report.read_text()))
        target.write_text(json.dumps(pinned, indent=1, sort_keys=True) + "\n")
        print(f"pinned {target.relative_to(PINNED.parent)}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--write":
        sys.exit("usage: python integration_tests/test_pinned_reports.py --write RUNS_DIR")
    write_pins(Path(sys.argv[2]))
    sys.exit(0)


from deq_core.analysis import validate_report  # noqa: E402
from deq_core.domains import BACKENDS, discover  # noqa: E402

DOMAINS, ERRORS = discover()
INSTALLED = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
BACKEND = os.environ.get("DEQ_BACKEND") or (INSTALLED[0] if INSTALLED else None)
TASKS = [
    (name, task)
    for name, domain in sorted(DOMAINS.items())
    if BACKEND in getattr(domain, "backends", BACKENDS)
    for task in domain.tasks
]


def run_task(name: str, task: str, out: Path) -> subprocess.CompletedProcess:
    """``deq run name --task task --quick --seed 0 --threads 1`` in smoke size, writing into ``out``."""
    env = {**os.environ, "DEQ_SMOKE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    argv = [sys.executable, "-m", "deq_core.cli", "run", name, "--task", task, "--quick"]
    argv += ["--backend", BACKEND, "--seed", "0", "--threads", "1", "--out", str(out)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Path, Any]]:
    """Every task's output folder and finished process, two runs at a time (each on one thread)."""
    root = tmp_path_factory.mktemp("runs")
    folders = {key: root / f"{key[0]}-{key[1]}" for key in TASKS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = {key: pool.submit(run_task, *key, folder) for key, folder in folders.items()}
    return {key: (folders[key], future.result()) for key, future in done.items()}


def test_every_installed_domain_loads():
    assert not ERRORS, f"domain plugins failed to load: {ERRORS}"
    assert TASKS, f"no domain runs on backend {BACKEND!r}"


@pytest.mark.parametrize(("name", "task"), TASKS, ids=[f"{n}-{t}" for n, t in TASKS])
def test_smoke_report_matches_its_pin(name, task, runs):
    folder, result = runs[(name, task)]
    assert result.returncode == 0, f"deq run {name} --task {task} failed:\n{result.stdout}\n{result.stderr}"
    report = json.loads((folder / "report.json").read_text())
    validate_report(report)
    assert report["domain"] == name and report["task"] == task and report["backend"] == BACKEND
    assert (folder / "scaling.png").stat().st_size > 0
    pin = PINNED / BACKEND / f"{name}-{task}.json"
    assert pin.is_file(), f"no pinned report {pin}: pin it (see this module's docstring)"
    changed = differences(comparable(report), json.loads(pin.read_text()))
    assert not changed, f"{name}/{task} on {BACKEND} differs from its pin:\n" + "\n".join(sorted(changed))
