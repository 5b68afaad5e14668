"""Model folders of ``deq run imaging``: written, loaded, applied, ``deq predict``; bad input, damaged files.

A smoke run per task (module-scoped, in the installed backend) keeps its models; loading them and applying
them to the run's own test set must give the report's PSNR (to 0.01 dB) at every budget and for every model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

import deq_imaging
from deq_core import ModelFileError, cli
from deq_core.model_files import MANIFEST, read_manifest
from deq_imaging.datasets.problem import make_problem
from deq_imaging.evaluation.metrics import mean_scores
from deq_imaging.models.config import parse_config

INSTALLED = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]
BACKEND = os.environ.get("DEQ_BACKEND") or (INSTALLED[0] if INSTALLED else "torch")
# JAX skips denoise (the identity operator of deblur's code path) and the Anderson run: its compiles cost
# minutes in CI, and what they would check is backend-free (the operator) or deq-core's (the solver).
TASKS = ("deblur", "ct", "denoise") if BACKEND == "torch" else ("deblur", "ct")
pytestmark = pytest.mark.skipif(BACKEND not in INSTALLED, reason=f"{BACKEND} not installed")


def _deq(*argv: str) -> int:
    """``deq ARGV`` in this process."""
    return cli.main(list(argv))


@pytest.fixture(scope="module", params=TASKS)
def run(request, tmp_path_factory):
    """(task, run folder, report, problem) of a smoke run of ``task``, seed 0."""
    task = request.param
    out = tmp_path_factory.mktemp(f"run-{task}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEQ_SMOKE", "1")
        assert _deq("run", "imaging", "--task", task, "--quick", "--backend", BACKEND, "--out", str(out)) == 0
        config = json.loads((out / "config.json").read_text())
        problem = make_problem(task, parse_config(config), 0)
    return task, out, json.loads((out / "report.json").read_text()), problem


def test_run_writes_every_model_with_what_applying_it_needs(run):
    task, out, report, problem = run
    assert sorted(p.name for p in (out / "models").iterdir()) == ["explicit", "implicit", "unrolled"]
    implicit = read_manifest(out / "models" / "implicit")
    assert (implicit["domain"], implicit["task"], implicit["backend"]) == ("imaging", task, BACKEND)
    assert implicit["model_class"] == "ImplicitNet" and implicit["config"] == report["config"]
    operator = implicit["apply"]["operator"]
    if task == "deblur":
        np.testing.assert_array_equal(np.asarray(operator["kernel"]), problem.spec.kernel)
    if task == "ct":
        np.testing.assert_array_equal(np.asarray(operator["theta"]), problem.spec.theta)
    k = report["config"]["max_iter"]
    assert implicit["apply"]["steps"] == k == implicit["metrics"]["steps"]
    assert implicit["metrics"]["psnr"] == report["quality"]["implicit"][report["iterations"].index(k)]
    assert read_manifest(out / "models" / "explicit")["metrics"]["psnr"] == report["quality"]["explicit"]
    unrolled = read_manifest(out / "models" / "unrolled")
    assert unrolled["metrics"]["psnr"] == report["extra"]["unrolled"]["psnr"]
    assert unrolled["model_class"] == "Unrolled" and unrolled["apply"]["stages"] == 2
    assert "numpy" in implicit["versions"] and "deq-imaging" in implicit["versions"]


def test_loaded_models_reproduce_the_report_at_every_budget(run):
    task, out, report, problem = run
    implicit = deq_imaging.load_model(out / "models" / "implicit")
    for t, reported in zip(report["iterations"], report["quality"]["implicit"], strict=True):
        psnr, _ = mean_scores(implicit(problem.test_y, steps=t), problem.test_x)
        assert psnr == pytest.approx(reported, abs=0.01), t
    default, _ = mean_scores(implicit(problem.test_y), problem.test_x)
    assert default == pytest.approx(implicit.manifest["metrics"]["psnr"], abs=0.01)
    for name, reported in (
        ("explicit", report["quality"]["explicit"]),
        ("unrolled", report["extra"]["unrolled"]["psnr"]),
    ):
        model = deq_imaging.load_model(out / "models" / name)
        assert mean_scores(model(problem.test_y), problem.test_x)[0] == pytest.approx(reported, abs=0.01)


@pytest.mark.skipif(BACKEND != "torch", reason="its exactly-t-step iteration is deq-core's, tested there")
def test_a_model_of_another_solver_reproduces_its_report(tmp_path, monkeypatch):
    """Anderson's budgets come from deq-core's exactly-t-step iteration, not the one-pass Picard loop."""
    monkeypatch.setenv("DEQ_SMOKE", "1")
    argv = ["run", "imaging", "--task", "deblur", "--quick", "--backend", BACKEND, "--out", str(tmp_path)]
    assert _deq(*argv, "--set", "solver=anderson") == 0
    report = json.loads((tmp_path / "report.json").read_text())
    problem = make_problem("deblur", parse_config(report["config"]), 0)
    model = deq_imaging.load_model(tmp_path / "models" / "implicit")
    for t, reported in zip(report["iterations"], report["quality"]["implicit"], strict=True):
        psnr, _ = mean_scores(model(problem.test_y, steps=t), problem.test_x)
        assert psnr == pytest.approx(reported, abs=0.01), t


def test_framework_arrays_in_give_framework_arrays_out(run):
    _, out, _, problem = run
    model = deq_imaging.load_model(out / "models" / "explicit")
    if BACKEND == "torch":
        import torch

        restored = model(torch.as_tensor(problem.test_y, dtype=torch.float64).requires_grad_())
        assert isinstance(restored, torch.Tensor)
        restored = restored.numpy()
    else:
        import jax.numpy as jnp

        restored = model(jnp.asarray(problem.test_y))
        assert not isinstance(restored, np.ndarray)
    np.testing.assert_allclose(np.asarray(restored), model(problem.test_y), atol=1e-5)


def test_deq_predict_on_the_test_set_scores_the_report(run, tmp_path, capsys):
    task, out, report, problem = run
    np.save(tmp_path / "y.npy", problem.test_y)
    np.save(tmp_path / "x.npy", problem.test_x)
    k = str(report["config"]["max_iter"])
    for name, extra, reported in (
        ("implicit", ["--steps", k], report["quality"]["implicit"][report["iterations"].index(int(k))]),
        ("explicit", [], report["quality"]["explicit"]),
    ):
        target = tmp_path / name
        argv = ["predict", "--model", str(out / "models" / name), "--input", str(tmp_path / "y.npy")]
        assert _deq(*argv, "--reference", str(tmp_path / "x.npy"), "--out", str(target), *extra) == 0
        result = json.loads((target / "predictions.json").read_text())
        assert result["mean_psnr"] == pytest.approx(reported, abs=0.01)
        assert [row["image"] for row in result["rows"]] == ["0000", "0001"]
        restored = np.load(target / "restored.npy")
        assert restored.shape == problem.test_x.shape
        png = np.asarray(Image.open(target / "0001.png"))
        np.testing.assert_allclose(png / 255, np.clip(restored[1, 0], 0, 1), atol=0.5 / 255 + 1e-6)
    assert "psnr" in capsys.readouterr().out


def test_deq_predict_reads_and_writes_image_folders(run, tmp_path, capsys):
    task, out, _, problem = run
    inputs, clean = tmp_path / "in", tmp_path / "clean"
    for folder, images in ((inputs, problem.test_y), (clean, problem.test_x)):
        folder.mkdir()
        for name, image in zip(("b", "a"), images, strict=True):
            Image.fromarray(np.round(np.clip(image[0], 0, 1) * 255).astype(np.uint8)).save(
                folder / f"{name}.png"
            )
    argv = ["predict", "--model", str(out / "models" / "implicit"), "--input", str(inputs)]
    code = _deq(*argv, "--out", str(tmp_path / "plain"))
    if task != "ct":
        assert code == 0 and "mean_psnr" not in (tmp_path / "plain" / "predictions.json").read_text()
        assert (tmp_path / "plain" / "a.png").is_file() and not (tmp_path / "plain" / "restored.npy").exists()
    argv += ["--reference", str(clean), "--out", str(tmp_path / "out")]
    code = _deq(*argv)
    if task == "ct":  # sinograms are not images
        assert code == 2 and "reads its sinograms from one .npy" in capsys.readouterr().err
        return
    assert code == 0
    rows = json.loads((tmp_path / "out" / "predictions.json").read_text())["rows"]
    assert [row["image"] for row in rows] == ["a", "b"] and all(row["psnr"] > 10 for row in rows)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]
    (clean / "a.png").unlink()
    assert _deq(*argv) == 2 and "has no image named ['a']" in capsys.readouterr().err


def test_deq_predict_names_bad_files(run, tmp_path, capsys):
    _, out, _, problem = run
    base = ["predict", "--model", str(out / "models" / "implicit"), "--out", str(tmp_path / "out")]
    np.save(tmp_path / "int.npy", (problem.test_y * 255).astype(np.uint8))
    np.save(tmp_path / "y.npy", problem.test_y)
    np.save(tmp_path / "x.npy", problem.test_x[:1])
    (tmp_path / "y.txt").write_text("1 2 3")
    for argv, message in (
        (["--input", str(tmp_path / "int.npy")], r"must hold floats \(images in \[0, 1\]\)"),
        (["--input", str(tmp_path / "y.txt")], "give a folder of images or one .npy file"),
        (["--input", str(tmp_path / "y.npy"), "--steps", "0"], "--steps must be >= 1"),
        (["--input", str(tmp_path / "y.npy"), "--reference", str(tmp_path / "x.npy")], "1 images for 2"),
    ):
        assert _deq(*base, *argv) == 2
        assert re.search(message, capsys.readouterr().err), message


def test_bad_input_is_named(run):
    task, out, _, problem = run
    model = deq_imaging.load_model(out / "models" / "implicit")
    y = problem.test_y
    for bad, message in (
        (y[0], r"shape \(N, 1, H, W\)"),
        (np.repeat(y, 2, axis=1), r"shape \(N, 1, H, W\)"),
        (y[:0], "N >= 1"),
        ((y * 255).astype(np.uint8), "real floating-point input"),
        (np.full_like(y, np.nan), "NaN or infinite"),
    ):
        with pytest.raises(ValueError, match=message):
            model(bad)
    for steps in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="steps must be an integer >= 1"):
            model(y, steps=steps)
    with pytest.raises(ValueError, match="has no test-time budget"):
        deq_imaging.load_model(out / "models" / "explicit")(y, steps=3)
    if task == "ct":
        with pytest.raises(ValueError, match=r"sinograms of shape \(N, 1, 32, 8\) \(detectors, angles\)"):
            model(y[:, :, :-1])
    if task == "deblur":
        with pytest.raises(ValueError, match=r"images at least as large as its \(7, 7\) kernel"):
            model(y[:, :, :3, :3])


def test_damaged_or_mismatched_model_folders_are_named(run, tmp_path):
    import shutil

    _, out, _, _ = run
    folder = shutil.copytree(out / "models" / "implicit", tmp_path / "implicit")
    weights = next(p for p in folder.iterdir() if p.name.startswith("weights"))
    manifest = json.loads((folder / MANIFEST).read_text())
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="is damaged"):
        deq_imaging.load_model(folder)
    shutil.copy(out / "models" / "implicit" / weights.name, weights)
    manifest["config"]["features"] += 1  # another skeleton than the weights
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="does not fit"):
        deq_imaging.load_model(folder)
    manifest["config"]["features"] -= 1
    manifest["domain"] = "pde"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="holds a pde model, not an imaging one"):
        deq_imaging.load_model(folder)
