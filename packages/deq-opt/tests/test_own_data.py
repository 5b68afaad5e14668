"""``deq run opt --data FOLDER``: training on a folder of MPS files (GLOP labels, cached), and its errors."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import deq_opt
from deq_core import cli
from deq_core.errors import ConfigError
from deq_opt import LinearProgram
from deq_opt.datasets import random_lp, read_mps, write_mps
from deq_opt.evaluation import own_data
from deq_opt.evaluation.metrics import solution_metrics

INSTALLED = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]


def _folder(path, count: int = 10):
    """``count`` small random LPs (4 rows x 9 columns) as MPS files in ``path``."""
    path.mkdir()
    for k in range(count):
        write_mps(random_lp(4, 9, 16, seed=k), path / f"lp{k}.mps")
    return path


@pytest.mark.parametrize("backend", INSTALLED)
def test_run_trains_on_the_folder_and_its_models_apply_to_the_test_files(
    backend, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("DEQ_SMOKE", "1")
    monkeypatch.setenv("DEQ_OPT_CACHE", str(tmp_path / "cache"))
    data, out = _folder(tmp_path / "lps"), tmp_path / "out"
    argv = ["run", "opt", "--task", "random-lp", "--quick", "--backend", backend, "--out", str(out)]
    assert cli.main([*argv, "--data", str(data), "--threads", "1"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["data"] == str(data.resolve()) and report["extra"]["shape"] == [4, 9]
    assert len(list((tmp_path / "cache").glob("mps-*.npz"))) == 1
    model = deq_opt.load_model(out / "models" / "implicit")
    names = model.manifest["apply"]["test_set"]["files"]
    assert len(names) == 2 and model.manifest["apply"]["test_set"]["data"] == str(data.resolve())
    _, labelled = own_data.label_files(data, workers=1)  # from the run's cache
    index = [int(name[2:]) for name in names]
    lps = [read_mps(data / f"{name}.mps") for name in names]
    x, y = model(lps)
    error = solution_metrics(lps, x, y, labelled.x[index], labelled.y[index])["primal_error"]
    assert error == pytest.approx(report["quality"]["implicit"][-1], rel=1e-4)


def test_labels_are_cached_by_contents(tmp_path, monkeypatch) -> None:
    data = _folder(tmp_path / "lps", 3)
    names, first = own_data.label_files(data, workers=1, cache=tmp_path / "cache")
    assert names == ["lp0", "lp1", "lp2"] and first.x.shape == (3, 9) and first.y.shape == (3, 4)
    monkeypatch.setattr(own_data, "_solve_file", lambda path: pytest.fail(f"{path} solved again"))
    _, again = own_data.label_files(data, workers=1, cache=tmp_path / "cache")
    np.testing.assert_array_equal(again.x, first.x)
    write_mps(random_lp(4, 9, 16, seed=7), data / "lp2.mps")  # other contents: labelled afresh
    with pytest.raises(pytest.fail.Exception, match="solved again"):
        own_data.label_files(data, workers=1, cache=tmp_path / "cache")


def test_split_is_seeded_and_keeps_one_test_lp(tmp_path) -> None:
    names, data = own_data.label_files(_folder(tmp_path / "lps", 3), workers=1, cache=tmp_path / "cache")
    train, test, test_names = own_data.split(names, data, 5)
    assert len(train.lps) == 2 and len(test.lps) == 1 and test_names[0] in names
    assert own_data.split(names, data, 5)[2] == test_names
    np.testing.assert_array_equal(test.x[0], data.x[names.index(test_names[0])])


def test_bad_folders_are_named(tmp_path) -> None:
    data = _folder(tmp_path / "lps", 2)
    write_mps(random_lp(5, 9, 16, seed=0), data / "other.mps")
    with pytest.raises(ConfigError, match=r"other.mps has 5 rows x 9 columns, lp0.mps has 4 x 9"):
        own_data.label_files(data, workers=1, cache=tmp_path / "cache")
    one = _folder(tmp_path / "one", 1)
    with pytest.raises(ConfigError, match="needs at least 2 LPs"):
        own_data.label_files(one, workers=1, cache=tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="the folder holds no .mps files"):
        own_data.label_files(tmp_path / "empty", workers=1, cache=tmp_path / "cache")
    bad = _folder(tmp_path / "bad", 1)
    infeasible = LinearProgram(c=[1.0], A=[[1.0]], row_lo=[2.0], row_hi=[np.inf], lo=[0.0], hi=[1.0])
    feasible = LinearProgram(c=[1.0], A=[[1.0]], row_lo=[0.0], row_hi=[np.inf], lo=[0.0], hi=[1.0])
    write_mps(feasible, bad / "a.mps")
    write_mps(infeasible, bad / "b.mps")
    (bad / "lp0.mps").unlink()
    with pytest.raises(
        ValueError, match=r"GLOP finds .*b.mps infeasible; training needs LPs with an optimum"
    ):
        own_data.label_files(bad, workers=1, cache=tmp_path / "cache")
