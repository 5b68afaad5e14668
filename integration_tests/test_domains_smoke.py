"""One smoke run per installed domain through the ``deq`` CLI, on this venv's backend.

Domains are discovered through the real ``deq.domains`` entry points. Each runs its default task with
``--quick`` and ``DEQ_SMOKE=1`` (as tiny as possible) in a subprocess; the report must follow the schema
and the plot must exist.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from deq_core.analysis import validate_report
from deq_core.domains import BACKENDS, discover

DOMAINS, ERRORS = discover()
INSTALLED = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
BACKEND = os.environ.get("DEQ_BACKEND") or (INSTALLED[0] if INSTALLED else None)


def test_every_installed_domain_loads():
    assert not ERRORS, f"domain plugins failed to load: {ERRORS}"


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_domain_smoke_run(name, tmp_path):
    domain = DOMAINS[name]
    if BACKEND is None or BACKEND not in getattr(domain, "backends", BACKENDS):
        pytest.skip(f"domain {name!r} does not run on backend {BACKEND!r}")
    env = {**os.environ, "DEQ_SMOKE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    argv = [sys.executable, "-m", "deq_core.cli", "run", name, "--quick", "--backend", BACKEND]
    result = subprocess.run(
        [*argv, "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"deq run {name} failed:\n{result.stdout}\n{result.stderr}"
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    assert report["domain"] == name and report["backend"] == BACKEND
    assert (tmp_path / "scaling.png").stat().st_size > 0
