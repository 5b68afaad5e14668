"""Model folders (write, verify, load through a domain), config overrides, ``deq run`` -> ``deq predict``."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

from deq_core import ModelFileError, cli, load_model
from deq_core.errors import ConfigError
from deq_core.model_files import MANIFEST, read_manifest, shipped, write_model
from deq_core.overrides import apply_overrides, parse_assignment

INSTALLED = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]

FIELDS = dict(
    domain="toy",
    task="sensing",
    backend="torch",
    name="implicit",
    model_class="Implicit",
    config={"n": 4},
    apply={"kernel": np.eye(2)},
    metrics={"mse": float("nan")},
    versions={},
)


def _weights(data: bytes):
    def write(folder):
        (folder / "weights.bin").write_bytes(data)
        return ["weights.bin"]

    return write


def test_write_then_read_roundtrips_and_replaces_whole(tmp_path):
    folder = write_model(tmp_path / "models" / "implicit", _weights(b"abc"), **FIELDS)
    manifest = read_manifest(folder)
    assert manifest["apply"]["kernel"] == [[1.0, 0.0], [0.0, 1.0]] and manifest["metrics"]["mse"] is None
    assert manifest["files"]["weights.bin"]["bytes"] == 3
    assert read_manifest(folder / MANIFEST) == manifest
    write_model(folder, _weights(b"longer"), **FIELDS)
    assert (folder / "weights.bin").read_bytes() == b"longer"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["implicit"]  # no staging left


def test_a_failed_write_leaves_the_old_model(tmp_path):
    folder = write_model(tmp_path / "m", _weights(b"old"), **FIELDS)

    def crash(staging):
        (staging / "weights.bin").write_bytes(b"half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        write_model(folder, crash, **FIELDS)
    assert (folder / "weights.bin").read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["m"]
    with pytest.raises(ValueError, match="missing fields"):
        write_model(tmp_path / "n", _weights(b""), domain="toy")


def test_model_folder_modes_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        folder = write_model(tmp_path / "m", _weights(b"x"), **FIELDS)
    finally:
        os.umask(previous)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert (folder / MANIFEST).stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "weights.bin").write_bytes(b"abd"), "weights.bin is damaged"),
        (lambda f: (f / "weights.bin").unlink(), "weights.bin is missing"),
        (lambda f: (f / MANIFEST).write_text("{not json"), "is not valid JSON"),
        (lambda f: _edit(f, format=99), "has format 99, written by a newer deq-core"),
        (lambda f: _edit(f, format=0), "written by an older deq-core"),
        (lambda f: _edit(f, drop="apply"), r"lacks the fields \['apply'\]"),
        (lambda f: (f / MANIFEST).unlink(), "is not a deq model folder"),
    ],
)
def test_damaged_or_foreign_folders_are_named(tmp_path, damage, message):
    folder = write_model(tmp_path / "m", _weights(b"abc"), **FIELDS)
    damage(folder)
    with pytest.raises(ModelFileError, match=message):
        read_manifest(folder)


def _edit(folder, format=None, drop=None):
    manifest = json.loads((folder / MANIFEST).read_text())
    if format is not None:
        manifest["format"] = format
    manifest.pop(drop, None)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_missing_paths_and_unknown_domains(tmp_path, toy_entry_points):
    with pytest.raises(ModelFileError, match="does not exist"):
        read_manifest(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFileError, match="is a file"):
        read_manifest(tmp_path / "file")
    folder = write_model(tmp_path / "m", _weights(b"abc"), **{**FIELDS, "domain": "weather"})
    with pytest.raises(ModelFileError, match="needs domain 'weather', which is not installed"):
        load_model(folder)
    with pytest.raises(ModelFileError, match="domain 'toy' ships no pretrained models"):
        load_model("pretrained:toy/sensing")


def test_shipped_models_are_found_by_name_and_backend(tmp_path, monkeypatch):
    package = tmp_path / "shipping"
    write_model(package / "pretrained" / "sensing-torch", _weights(b"abc"), **FIELDS)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert shipped("shipping", "sensing", "torch") == package / "pretrained" / "sensing-torch"
    message = "has no pretrained model 'sensing' for jax; it ships: sensing-torch"
    with pytest.raises(ModelFileError, match=message):
        shipped("shipping", "sensing", "jax")


DEFAULTS = {
    "steps": 10,
    "lr": 1e-3,
    "budgets": [1, 2],
    "fast": False,
    "data": None,
    "params": {},
    "sub": {"a": 1},
}


def test_overrides_from_file_set_and_data(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("steps = 20\nlr = 1\n[params]\ndensity = 0.1\n[sub]\na = 2\n")
    config = apply_overrides(DEFAULTS, file, ["budgets=[1, 4]", "fast=true", "params.seed=3"], data=tmp_path)
    assert config == {
        "steps": 20,
        "lr": 1.0,
        "budgets": [1, 4],
        "fast": True,
        "data": str(tmp_path.resolve()),
        "params": {"density": 0.1, "seed": 3},
        "sub": {"a": 2},
    }
    assert DEFAULTS["params"] == {} and parse_assignment("name=hqs") == (["name"], "hqs")
    (tmp_path / "c.json").write_text(json.dumps(config))
    assert apply_overrides(DEFAULTS, tmp_path / "c.json") == config


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (
            "stepz=3",
            r"unknown config key 'stepz'; valid keys here: budgets, data, fast, lr, params, steps, sub",
        ),
        ("sub.b=3", r"unknown config key 'sub.b'; valid keys here: a"),
        ("steps=1.5", "steps must be an integer like its default 10, got 1.5"),
        ("fast=1", "fast must be true or false"),
        ("budgets=3", "budgets must be a list"),
        ("steps", "write key=value"),
    ],
)
def test_bad_overrides_name_the_key(assignment, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(DEFAULTS, assignments=[assignment])


def test_bad_override_files_and_data(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        apply_overrides(DEFAULTS, tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("steps = = 3")
    with pytest.raises(ConfigError, match="bad.toml is not valid TOML"):
        apply_overrides(DEFAULTS, tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="no such file or folder"):
        apply_overrides(DEFAULTS, data=tmp_path / "none")
    with pytest.raises(ConfigError, match="does not train on your own data"):
        apply_overrides({"steps": 1}, data=tmp_path)


@pytest.mark.parametrize("backend", INSTALLED)
def test_run_then_predict_gives_the_reported_quality(
    toy_entry_points, tmp_path, capsys, monkeypatch, backend
):
    """A toy smoke run keeps both models; ``deq predict`` on its test set scores the report's MSE."""
    from deq_toydomain.problem import make_problem

    monkeypatch.setenv("DEQ_SMOKE", "1")
    out = tmp_path / "run"
    argv = ["run", "toy", "--quick", "--backend", backend, "--out", str(out), "--set", "train_steps=4"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["train_steps"] == 4 == report["config"]["train_steps"]
    c = config
    problem = make_problem("sensing", c["n"], c["m"], c["n_train"], c["n_test"], c["noise"], 0)
    np.save(tmp_path / "y.npy", problem.test_y)
    np.save(tmp_path / "x.npy", problem.test_x)
    implicit = read_manifest(out / "models" / "implicit")
    assert implicit["backend"] == backend and implicit["metrics"]["mse"] == report["quality"]["implicit"][-1]
    steps = str(implicit["metrics"]["steps"])
    for name, extra in (("implicit", ["--steps", steps]), ("explicit", [])):
        argv = ["predict", "--model", str(out / "models" / name), "--input", str(tmp_path / "y.npy")]
        argv += ["--reference", str(tmp_path / "x.npy"), "--out", str(tmp_path / name), *extra]
        assert cli.main(argv) == 0, capsys.readouterr().err
        rows = json.loads((tmp_path / name / "predictions.json").read_text())["rows"]
        mse = np.mean([row["mse"] for row in rows])
        expected = report["quality"][name][-1] if name == "implicit" else report["quality"]["explicit"]
        assert mse == pytest.approx(expected, rel=1e-4)
        assert np.load(tmp_path / name / "predictions.npy").shape == problem.test_x.shape
    model = load_model(out / "models" / "implicit")
    assert model(problem.test_y[:3], steps=2).shape == (3, c["n"])
    with pytest.raises(ConfigError, match=r"input must have shape \(N, 12\)"):
        model(problem.test_y[:, :5])


def test_bad_overrides_on_the_command_line_are_one_line_errors(toy_entry_points, tmp_path, capsys):
    cases = [
        (["--set", "train_stepz=3"], "unknown config key 'train_stepz'; valid keys here: batch, budgets,"),
        (["--set", "train_steps=0"], "train_steps must be >= 1, got 0"),  # the domain's own check
        (["--data", str(tmp_path)], "this task does not train on your own data"),
        (["--config", str(tmp_path / "none.toml")], "does not exist"),
    ]
    for extra, message in cases:
        assert cli.main(["run", "toy", "--quick", "--out", str(tmp_path / "r"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("deq: error:") and err.count("\n") == 1, err


def test_predict_errors_are_one_line(toy_entry_points, tmp_path, capsys):
    folder = write_model(tmp_path / "m", _weights(b"abc"), **FIELDS)
    np.save(tmp_path / "y.npy", np.zeros((2, 12), np.float32))
    cases = [
        (["--model", str(tmp_path / "none")], "does not exist"),
        (["--model", str(folder), "--steps", "0"], "--steps must be >= 1, got 0"),
        (["--model", str(folder), "--backend", "mxnet"], "unknown backend 'mxnet'"),
        (["--model", str(folder), "--input", str(tmp_path / "none.npy")], "no such file or folder"),
        (["--model", str(folder), "--backend", "jax"], "is a torch model; run it with --backend torch"),
    ]
    for extra, message in cases:
        argv = ["predict", "--input", str(tmp_path / "y.npy"), "--out", str(tmp_path / "o"), *extra]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("deq: error:") and err.count("\n") == 1, err
