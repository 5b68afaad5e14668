"""The ``opt`` plugin end to end in the smoke size, on the installed backend."""

from __future__ import annotations

import os

import pytest

from deq_core.analysis import validate_report
from deq_opt.plugin import default_config, domain

BACKEND = os.environ.get("DEQ_BACKEND", "torch")


@pytest.mark.parametrize("task", ["random-lp", "pagerank", "setcover"])
def test_smoke_run(task: str, tmp_path, monkeypatch) -> None:
    pytest.importorskip(BACKEND)
    monkeypatch.setenv("DEQ_SMOKE", "1")
    monkeypatch.setenv("DEQ_OPT_CACHE", str(tmp_path / "cache"))
    report = domain.run(task, default_config(task, True), BACKEND, "cpu", tmp_path, 0)
    validate_report(report)
    assert (tmp_path / "warm_start.png").is_file()
    assert set(report["extra"]["warm_start"]) >= {"cold", "DEQ-GNN primal+dual"}
    assert len(report["extra"]["deq_gnn_per_budget"]["residual_mean"]) == len(report["iterations"])
    by_budget = report["extra"]["warm_start_by_budget"]
    assert set(by_budget) == {"4"}
    assert set(by_budget["4"]["pdlp"]) == {"0.0001", "1e-06"}
    assert by_budget["4"]["inference_seconds"] > 0
