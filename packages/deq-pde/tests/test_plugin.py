"""The ``pde`` plugin: entry point, config validation, a smoke run of each task on the installed backend."""

import importlib.util
import json
import os

import pytest

from deq_core.analysis.report import validate_report
from deq_core.domains import discover
from deq_core.errors import ConfigError
from deq_pde.plugin import config_from_dict, default_config, domain

BACKEND = os.environ.get("DEQ_BACKEND") or next(
    (b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None), None
)


def test_entry_point_loads_the_domain():
    domains, errors = discover()
    assert "pde" in domains, errors.get("pde")
    assert set(domains["pde"].tasks) == {"darcy", "nonlinear"}


@pytest.mark.parametrize("task", ["darcy", "nonlinear"])
@pytest.mark.parametrize("quick", [True, False])
def test_default_configs_validate(task, quick, monkeypatch):
    monkeypatch.delenv("DEQ_SMOKE", raising=False)
    config = default_config(task, quick)
    json.dumps(config)
    settings = config_from_dict(config).settings()
    assert max(settings.budgets) >= 2 * settings.model.solve.max_iter
    assert 1 in settings.explicit_depths


def test_unknown_task_and_key_are_named():
    with pytest.raises(ConfigError, match="unknown pde task 'heat'"):
        default_config("heat", True)
    with pytest.raises(ConfigError, match="widht"):
        config_from_dict({"widht": 3})
    with pytest.raises(ConfigError, match=r"Phantom\.tau must be a number in \(0\.0, 1\.0\]"):
        config_from_dict({"phantom_tau": 1.5}).settings()


@pytest.mark.skipif(BACKEND is None, reason="needs torch or jax")
@pytest.mark.parametrize("task", ["darcy", "nonlinear"])
def test_smoke_run_writes_a_valid_report(task, tmp_path, monkeypatch):
    monkeypatch.setenv("DEQ_SMOKE", "1")
    config = default_config(task, quick=True)
    report = domain.run(task, config, BACKEND, "cpu", tmp_path, 0)
    validate_report(report)
    assert report["iterations"] == list(config["budgets"])
    assert report["params"]["implicit"] == report["params"]["explicit"]
    assert set(report["quality"]["baselines"]) == (
        {"direct", "cg_amg", "jacobi", "gauss_seidel"} if task == "darcy" else {"newton", "picard"}
    )
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert (tmp_path / "data").is_dir()
