"""Model folders of ``deq run opt``: the kept models reproduce the report through ``deq predict`` and
``deq_opt.load_model``, on every installed backend; bad input and damaged folders give errors naming them."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import deq_opt
from deq_core import cli
from deq_core.errors import ModelFileError
from deq_core.model_files import MANIFEST, read_manifest
from deq_opt.datasets import random_lp, write_mps
from deq_opt.datasets.labels import LabelledSet, label
from deq_opt.evaluation.metrics import solution_metrics

INSTALLED = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]
FOLDERS = ("implicit", "deq-gnn", "explicit")


def _smoke_run(out: Path, task: str, backend: str, cache: Path) -> dict:
    """``deq run opt --task TASK`` in smoke size at seed 0 into ``out``; its report."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEQ_SMOKE", "1")
        patch.setenv("DEQ_OPT_CACHE", str(cache))
        argv = ["run", "opt", "--task", task, "--quick", "--backend", backend, "--out", str(out)]
        assert cli.main([*argv, "--seed", "0", "--threads", "1"]) == 0
    return json.loads((out / "report.json").read_text())


def _test_set(folder: Path, cache: Path) -> LabelledSet:
    """The run's test set, rebuilt from the recipe its model folder records (labels from the run's cache)."""
    recipe = read_manifest(folder)["apply"]["test_set"]
    return label(
        recipe["generator"], recipe["params"], recipe["count"], recipe["seed"], workers=1, cache=cache
    )


def _headline(report: dict, name: str) -> float:
    """The report's primal error of model folder ``name`` (the implicit one at the last budget)."""
    if name == "implicit":
        return report["quality"]["implicit"][-1]
    if name == "deq-gnn":
        return report["extra"]["deq_gnn_per_budget"]["primal_error"][-1]
    return report["quality"]["explicit"]


@pytest.fixture(scope="module", params=INSTALLED)
def run(request, tmp_path_factory) -> tuple[str, Path, dict, LabelledSet, Path]:
    """A random-lp smoke run: backend, output folder, report, test set, label cache."""
    root = tmp_path_factory.mktemp(f"run-{request.param}")
    report = _smoke_run(root / "out", "random-lp", request.param, root / "cache")
    return (
        request.param,
        root / "out",
        report,
        _test_set(root / "out" / "models" / "implicit", root / "cache"),
        root,
    )


def test_run_keeps_every_model_with_what_it_scored(run) -> None:
    backend, out, report, _, _ = run
    assert sorted(p.name for p in (out / "models").iterdir()) == sorted(FOLDERS)
    assert "data" not in report["config"]  # the pinned reports predate --data
    for name in FOLDERS:
        manifest = read_manifest(out / "models" / name)
        assert (manifest["domain"], manifest["task"], manifest["backend"]) == ("opt", "random-lp", backend)
        assert manifest["metrics"]["primal_error"] == _headline(report, name)
        assert manifest["config"] == {**report["config"], "data": None, "m": 10, "n": 50}
        assert set(manifest["apply"]["scales"]) == {"c", "b", "x", "y"}
    steps = read_manifest(out / "models" / "implicit")["apply"]["steps"]
    assert (
        steps == report["iterations"][-1]
        and read_manifest(out / "models" / "explicit")["apply"]["steps"] is None
    )


def test_predict_on_the_test_set_reproduces_the_report(run, tmp_path, capsys) -> None:
    """``deq predict`` on the run's test set as MPS files, with the GLOP optima as reference."""
    _, out, report, test, _ = run
    (tmp_path / "lps").mkdir()
    (tmp_path / "optima").mkdir()
    for k, lp in enumerate(test.lps):
        write_mps(lp, tmp_path / "lps" / f"lp{k:02d}.mps")
        np.savez(tmp_path / "optima" / f"lp{k:02d}.npz", x=test.x[k], y=test.y[k])
    for name in FOLDERS:
        argv = ["predict", "--model", str(out / "models" / name), "--input", str(tmp_path / "lps")]
        argv += ["--reference", str(tmp_path / "optima"), "--out", str(tmp_path / name)]
        assert cli.main(argv) == 0, capsys.readouterr().err
        result = json.loads((tmp_path / name / "predictions.json").read_text())
        rows = result["rows"]
        assert [row["instance"] for row in rows] == [f"lp{k:02d}" for k in range(len(test.lps))]
        assert np.mean([row["primal_error"] for row in rows]) == pytest.approx(
            _headline(report, name), rel=1e-4
        )
        assert all(row["pdlp_warm_status"] == "optimal" and row["pdlp_cold_iterations"] > 0 for row in rows)
        with np.load(tmp_path / name / "solutions" / "lp00.npz") as solution:
            assert solution["x"].shape == (50,) and solution["y"].shape == (10,)
    steps = str(report["iterations"][0])
    argv = [
        "predict",
        "--model",
        str(out / "models" / "implicit"),
        "--input",
        str(tmp_path / "lps" / "lp00.mps"),
    ]
    argv += [
        "--reference",
        str(tmp_path / "optima" / "lp00.npz"),
        "--out",
        str(tmp_path / "one"),
        "--steps",
        steps,
    ]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "one" / "predictions.json").read_text())["steps"] == int(steps)


def test_load_model_applies_like_the_run(run) -> None:
    """The Python API on the test set gives the report's errors; one LP in, one solution out; PDLP from it."""
    _, out, report, test, _ = run
    for name in FOLDERS:
        model = deq_opt.load_model(out / "models" / name)
        x, y = model(test.lps)
        error = solution_metrics(test.lps, x, y, test.x, test.y)["primal_error"]
        assert error == pytest.approx(_headline(report, name), rel=1e-4)
        x0, y0 = model(test.lps[0])
        np.testing.assert_allclose(x0, x[0], rtol=1e-6, atol=1e-9)
        assert x0.shape == (50,) and y0.shape == (10,)
    model = deq_opt.load_model(out / "models" / "implicit")
    budgets = report["iterations"]
    x, y = model(test.lps, steps=budgets[0])
    first = solution_metrics(test.lps, x, y, test.x, test.y)["primal_error"]
    assert first == pytest.approx(report["quality"]["implicit"][0], rel=1e-4)
    result = model.warm_start_pdlp(test.lps[0])
    assert result.status == "optimal" and result.iterations > 0


def test_bad_input_is_named(run) -> None:
    _, out, _, test, _ = run
    model = deq_opt.load_model(out / "models" / "implicit")
    with pytest.raises(ValueError, match=r"input 0 \(.*\) has 4 rows x 9 columns; .* 10 rows x 50 columns"):
        model([random_lp(4, 9, 16, seed=0)])
    with pytest.raises(TypeError, match="input 1 is a ndarray, not a LinearProgram"):
        model([test.lps[0], np.zeros(3)])
    with pytest.raises(TypeError, match="a LinearProgram or a non-empty list"):
        model([])
    for steps in (0, -1, 1.5, True, "4"):
        with pytest.raises(ValueError, match="steps must be an integer >= 1"):
            model(test.lps[:1], steps=steps)
    with pytest.raises(ValueError, match="tol must be a number in"):
        model.warm_start_pdlp(test.lps[0], tol=0.0)
    with pytest.raises(TypeError, match="warm_start_pdlp takes one LinearProgram"):
        model.warm_start_pdlp(test.lps[:2])
    explicit = deq_opt.load_model(out / "models" / "explicit")
    with pytest.raises(ValueError, match="ExplicitGNN has a fixed depth; call it without steps"):
        explicit(test.lps[0], steps=2)


def test_predict_errors_are_one_line(run, tmp_path, capsys) -> None:
    _, out, _, test, _ = run
    write_mps(random_lp(4, 9, 16, seed=0), tmp_path / "small.mps")
    write_mps(test.lps[0], tmp_path / "good.mps")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    np.savez(tmp_path / "bad.npz", x=np.zeros(3), y=np.zeros(10))
    implicit, explicit = str(out / "models" / "implicit"), str(out / "models" / "explicit")
    cases = [
        ([implicit, "small.mps"], "small.mps has 4 rows x 9 columns; the model takes 10 x 50 LPs"),
        ([implicit, "notes.txt"], "reads an .mps file or a folder of .mps files"),
        ([implicit, "empty"], "the folder holds no .mps files"),
        ([implicit, "good.mps", "--reference", "bad.npz"], "x (3,) and y (10,) do not fit good.mps"),
        ([implicit, "good.mps", "--reference", "empty"], "empty/good.npz is missing"),
        ([explicit, "good.mps", "--steps", "2"], "fixed depth; call it without steps"),
    ]
    for (model, input, *extra), message in cases:
        argv = ["predict", "--model", model, "--input", str(tmp_path / input), "--out", str(tmp_path / "o")]
        argv += [str(tmp_path / e) if e.endswith((".npz", "empty")) else e for e in extra]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("deq: error:") and err.count("\n") == 1, err


def test_damaged_or_misfitting_weights_are_named(run, tmp_path) -> None:
    _, out, _, _, _ = run
    folder = tmp_path / "implicit"
    shutil.copytree(out / "models" / "implicit", folder)
    weights = next(name for name in read_manifest(folder)["files"])
    data = bytearray((folder / weights).read_bytes())
    data[-1] ^= 0xFF
    (folder / weights).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"{weights} is damaged"):
        deq_opt.load_model(folder)
    shutil.copy(out / "models" / "implicit" / weights, folder / weights)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["config"]["hidden"] += 1  # the file no longer fits the network this config builds
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="does not fit LearnedPDHG"):
        deq_opt.load_model(folder)
    manifest["model_class"] = "Transformer"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="unknown opt model class 'Transformer'"):
        deq_opt.load_model(folder)
    manifest["domain"] = "pde"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="is a 'pde' model, not an opt model"):
        deq_opt.load_model(folder)


# Every other task in torch; in JAX one (its compiles cost minutes in CI, and the task-specific code that the
# others would check, features and generators, is backend-free).
OTHER_TASKS = [
    (task, backend)
    for backend in INSTALLED
    for task in (["setcover", "auction", "facility", "pagerank"] if backend == "torch" else ["setcover"])
]


@pytest.mark.parametrize(("task", "backend"), OTHER_TASKS)
def test_every_task_keeps_models_that_reproduce_its_report(task: str, backend: str, tmp_path) -> None:
    report = _smoke_run(tmp_path / "out", task, backend, tmp_path / "cache")
    test = _test_set(tmp_path / "out" / "models" / "implicit", tmp_path / "cache")
    for name in FOLDERS:
        x, y = deq_opt.load_model(tmp_path / "out" / "models" / name)(test.lps)
        error = solution_metrics(test.lps, x, y, test.x, test.y)["primal_error"]
        assert error == pytest.approx(_headline(report, name), rel=1e-4)
