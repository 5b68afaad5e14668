"""Models a ``pde`` run keeps: ``deq run`` -> ``OUT/models`` -> ``deq predict`` / ``load_model`` as reported.

One smoke run (``DEQ_SMOKE=1``) per task and installed backend, shared by the tests of this module; its test
set is read back from the run's data cache, so the loaded models must reproduce the report's numbers.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from backends import FRAMEWORKS, asarray

import deq_pde
from deq_core import ModelFileError, cli
from deq_core import load_model as core_load_model
from deq_core.model_files import MANIFEST, write_model
from deq_pde.datasets import store
from deq_pde.models.fourier import relative_l2
from deq_pde.plugin import INPUTS

pytestmark = pytest.mark.skipif(not FRAMEWORKS, reason="needs torch or jax")
RUNS = [(task, backend) for backend in FRAMEWORKS for task in ("darcy", "nonlinear")]


@pytest.fixture(scope="module", params=RUNS, ids=[f"{t}-{b}" for t, b in RUNS])
def run(request, tmp_path_factory):
    """A smoke run of one task on one backend through the CLI, and its test set as ``test.npz``."""
    task, backend = request.param
    root = tmp_path_factory.mktemp(f"{task}-{backend}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEQ_SMOKE", "1")
        argv = ["run", "pde", "--task", task, "--quick", "--backend", backend, "--out", str(root / "run")]
        assert cli.main(argv) == 0
    report = json.loads((root / "run" / "report.json").read_text())
    n, total = report["config"]["n_train"], report["config"]["n_train"] + report["config"]["n_test"]
    inputs, solutions = store.load(report["extra"]["dataset"], (INPUTS[task], "solution"), total)
    np.savez(root / "test.npz", **{INPUTS[task]: inputs[n:], "solution": solutions[n:]})
    models = root / "run" / "models"
    return SimpleNamespace(
        task=task,
        backend=backend,
        root=root,
        models=models,
        report=report,
        train=inputs[:n],
        a=inputs[n:],
        u=solutions[n:],
    )


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def _predict(run, name: str, *extra: str) -> dict:
    out = run.root / f"predict-{name}-{len(extra)}"
    argv = ["predict", "--model", str(run.models / name), "--input", str(run.root / "test.npz")]
    assert cli.main([*argv, "--out", str(out), *extra]) == 0
    return json.loads((out / "predictions.json").read_text()) | {"out": out}


def test_the_run_keeps_every_model_with_what_applying_it_needs(run):
    assert sorted(p.name for p in run.models.iterdir()) == ["explicit", "implicit"]
    implicit, explicit = _manifest(run.models / "implicit"), _manifest(run.models / "explicit")
    report, quality = run.report, run.report["quality"]
    for manifest, cls in ((implicit, "FNODEQ"), (explicit, "FNO")):
        assert (manifest["domain"], manifest["task"], manifest["backend"]) == ("pde", run.task, run.backend)
        assert manifest["model_class"] == cls and run.backend in manifest["versions"]
        assert manifest["apply"]["grid_size"] == report["config"]["grid_size"] == run.a.shape[-1]
        assert manifest["apply"]["input"] == INPUTS[run.task]
        assert manifest["apply"]["normalisation"]["input_std"] == pytest.approx(
            run.train.std(ddof=1), rel=1e-5
        )
    assert implicit["config"] == report["config"] and explicit["config"] == {**report["config"], "depth": 1}
    assert implicit["metrics"]["rel_l2"] == quality["implicit"][-1] and implicit["metrics"]["steps"] == 4
    assert implicit["apply"]["steps"] == max(report["iterations"])
    assert explicit["metrics"]["rel_l2"] == quality["explicit"]


def test_deq_predict_reproduces_the_reported_errors(run):
    """On the run's own test set, both models score the report's headline rel. L2 (to 1e-4 relative)."""
    implicit = _predict(run, "implicit")
    assert implicit["steps"] == max(run.report["iterations"]) and implicit["rel_l2"] > 0
    assert implicit["rel_l2"] == pytest.approx(run.report["quality"]["implicit"][-1], rel=1e-4)
    assert np.mean([row["rel_l2"] for row in implicit["rows"]]) == pytest.approx(implicit["rel_l2"])
    assert np.load(implicit["out"] / "solutions.npy").shape == run.u.shape
    assert (implicit["out"] / "samples.png").read_bytes()[:4] == b"\x89PNG"
    first = _predict(run, "implicit", "--steps", "1")
    assert first["rel_l2"] == pytest.approx(run.report["quality"]["implicit"][0], rel=1e-4)
    explicit = _predict(run, "explicit")
    assert explicit["rel_l2"] == pytest.approx(run.report["quality"]["explicit"], rel=1e-4)


def test_loaded_models_reproduce_every_budget_from_numpy_or_backend_arrays(run):
    model = deq_pde.load_model(run.models / "implicit")
    assert isinstance(core_load_model(run.models / "implicit"), deq_pde.PDEModel)
    assert model.steps == max(run.report["iterations"]) and model.input_name == INPUTS[run.task]
    for steps, expected in zip(run.report["iterations"], run.report["quality"]["implicit"], strict=True):
        error = relative_l2(model(run.a, steps=steps).astype(np.float64), run.u).mean()
        assert error == pytest.approx(expected, rel=1e-4)
    native = model(asarray(run.backend, run.a, "float32"))
    assert isinstance(native, np.ndarray) and np.allclose(native, model(run.a), atol=1e-6)
    assert model(run.a[:2].tolist(), steps=1).shape == (2, *run.a.shape[1:])


@pytest.mark.parametrize(
    ("make", "steps", "message"),
    [
        (lambda a: a[:, :5, :5], None, r"must have shape \(B, 9, 9\) with B >= 1, got \(8, 5, 5\)"),
        (lambda a: a[0], None, r"got \(9, 9\); one field: x\[None\]"),
        (lambda a: a[:0], None, r"with B >= 1, got \(0, 9, 9\)"),
        (lambda a: a[None], None, r"got \(1, 8, 9, 9\)"),
        (lambda a: a.astype(np.complex64), None, "must hold real numbers .* got dtype complex64"),
        (lambda a: a > 0, None, "got dtype bool"),
        (lambda a: a.astype(str), None, "must hold real numbers"),
        (lambda a: np.where(a == a.max(), np.nan, a), None, "hold NaN or infinite values"),
        (lambda a: [[1.0, 2.0], [3.0]], None, "must be an array"),
        (lambda a: a, 0, "steps must be an integer >= 1 .* got 0"),
        (lambda a: a, 1.5, "got 1.5"),
        (lambda a: a, True, "got True"),
    ],
)
def test_bad_inputs_and_budgets_are_named(run, make, steps, message):
    model = deq_pde.load_model(run.models / "implicit")
    with pytest.raises(ValueError, match=message):
        model(make(run.a), steps=steps)


def test_an_explicit_fno_takes_no_budget(run):
    model = deq_pde.load_model(run.models / "explicit")
    assert model.steps is None and model(run.a).shape == run.u.shape
    with pytest.raises(ValueError, match="'explicit' is an explicit FNO of fixed depth"):
        model(run.a, steps=2)


def _edited(run, tmp_path, name: str = "implicit", **changes) -> Path:
    """A copy of a model folder with ``model.json`` entries replaced (``part.key`` -> None deletes it)."""
    folder = shutil.copytree(run.models / name, tmp_path / name)
    manifest = _manifest(folder)
    for path, value in changes.items():
        part, _, key = path.partition("__")
        target = manifest if not key else manifest[part]
        if value is None:
            del target[key or part]
        else:
            target[key or part] = value
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"config__width": 5}, "weights.* does not fit FNODEQ"),
        ({"config__modes": 2}, "does not fit FNODEQ"),
        ({"apply__steps": None}, r"lacks apply\.steps"),
        ({"config__solver": None, "apply__input": None}, r"lacks apply\.input, config\.solver"),
        ({"config__phantom_tau": 3.0}, "invalid model config: .*tau"),
        ({"model_class": "UNet"}, "model_class 'UNet' is not a pde model"),
        ({"backend": "mxnet"}, "a mxnet model and mxnet is not installed"),
    ],
)
def test_damaged_or_edited_model_folders_are_named(run, tmp_path, changes, message):
    with pytest.raises(ModelFileError, match=message):
        deq_pde.load_model(_edited(run, tmp_path, **changes))


def test_damaged_weights_and_foreign_models_are_refused(run, tmp_path):
    folder = shutil.copytree(run.models / "explicit", tmp_path / "explicit")
    weights = next(p for p in folder.iterdir() if p.name.startswith("weights"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"{weights.name} is damaged"):
        deq_pde.load_model(folder)
    fields = {key: _manifest(run.models / "explicit")[key] for key in ("task", "name", "config", "apply")}
    other = write_model(
        tmp_path / "other",
        lambda staging: [],
        **fields,
        domain="imaging",
        backend=run.backend,
        model_class="ImplicitNet",
        metrics={},
        versions={},
    )
    with pytest.raises(ModelFileError, match="holds a 'imaging' model; deq_pde.load_model loads pde models"):
        deq_pde.load_model(other)


def test_deq_predict_names_bad_files_in_one_line(run, tmp_path, capsys):
    np.save(tmp_path / "small.npy", run.a[:, :4, :4])
    np.savez(tmp_path / "pairs.npz", field=run.a, other=run.u)
    np.savez(tmp_path / "short.npz", **{INPUTS[run.task]: run.a, "solution": run.u[:2]})
    (tmp_path / "a.txt").write_text("1 2 3")
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    test, implicit = str(run.root / "test.npz"), str(run.models / "implicit")
    cases = [
        ([implicit, str(tmp_path / "a.txt")], "is a .txt file; give one .npy array"),
        ([implicit, str(tmp_path)], "is a folder"),
        ([implicit, str(tmp_path / "broken.npy")], "broken.npy cannot be read as numpy data"),
        ([implicit, str(tmp_path / "small.npy")], r"must have shape \(B, 9, 9\)"),
        ([implicit, str(tmp_path / "pairs.npz")], f"holds no '{INPUTS[run.task]}' array"),
        ([implicit, str(tmp_path / "short.npz")], r"'solution' array of .* has shape \(2, 9, 9\)"),
        ([implicit, test, "--reference", str(tmp_path / "small.npy")], r"small.npy has shape \(8, 4, 4\)"),
        ([str(run.models / "explicit"), test, "--steps", "3"], "is an explicit FNO of fixed depth"),
    ]
    for (model, data, *extra), message in cases:
        argv = ["predict", "--model", model, "--input", data, "--out", str(tmp_path / "out"), *extra]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("deq: error:") and err.count("\n") == 1 and re.search(message, err), err
