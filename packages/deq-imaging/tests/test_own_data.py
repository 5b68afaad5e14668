"""``deq run imaging --data DIR``: training and testing on a folder of the user's clean images."""

from __future__ import annotations

import importlib.util
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

import deq_imaging
from deq_core import cli
from deq_imaging.datasets import read_image
from deq_imaging.datasets.problem import make_problem
from deq_imaging.evaluation.metrics import mean_scores
from deq_imaging.models.config import parse_config

INSTALLED = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]
BACKEND = os.environ.get("DEQ_BACKEND") or (INSTALLED[0] if INSTALLED else "torch")
pytestmark = pytest.mark.skipif(BACKEND not in INSTALLED, reason=f"{BACKEND} not installed")


@pytest.fixture
def folder(tmp_path):
    """Eight 40x40 grayscale PNGs whose pixels all lie in [100, 150] (no bundled image looks like that)."""
    rng = np.random.default_rng(3)
    path = tmp_path / "clean"
    path.mkdir()
    for i in range(8):
        pixels = 100 + np.cumsum(rng.integers(0, 2, (40, 40)), axis=1).clip(0, 50)
        Image.fromarray(pixels.astype(np.uint8)).save(path / f"img{i}.png")
    return path


def test_run_trains_and_tests_on_the_folder(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("DEQ_SMOKE", "1")
    out = tmp_path / "run"
    argv = ["run", "imaging", "--task", "denoise", "--quick", "--backend", BACKEND, "--out", str(out)]
    assert cli.main([*argv, "--data", str(folder)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == str(folder.resolve())
    problem = make_problem("denoise", parse_config(config), 0)
    assert problem.test_x.min() >= 100 / 255 - 1e-6 and problem.test_x.max() <= 150 / 255 + 1e-6
    report = json.loads((out / "report.json").read_text())
    model = deq_imaging.load_model(out / "models" / "explicit")
    psnr, _ = mean_scores(model(problem.test_y), problem.test_x)
    assert psnr == pytest.approx(report["quality"]["explicit"], abs=0.01)


@pytest.fixture
def colour_folder(tmp_path):
    """Eight 40x40 RGB PNGs (the CT task reads them as grayscale)."""
    rng = np.random.default_rng(5)
    path = tmp_path / "colour"
    path.mkdir()
    for i in range(8):
        pixels = rng.integers(0, 256, (40, 40, 3)).cumsum(axis=0) // 40
        Image.fromarray(pixels.astype(np.uint8)).save(path / f"rgb{i}.png")
    return path


def _is_crop_of(crop: np.ndarray, images: list[np.ndarray]) -> bool:
    """Whether ``crop`` (C, n, n) is a window of one of ``images`` (C, H, W)."""
    n = crop.shape[-1]
    return any(
        np.array_equal(image[:, t : t + n, s : s + n], crop)
        for image in images
        for t in range(image.shape[1] - n + 1)
        for s in range(image.shape[2] - n + 1)
    )


def test_ct_trains_and_tests_on_the_folder(colour_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("DEQ_SMOKE", "1")
    out = tmp_path / "run"
    argv = ["run", "imaging", "--task", "ct", "--quick", "--backend", BACKEND, "--out", str(out)]
    assert cli.main([*argv, "--data", str(colour_folder)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == str(colour_folder.resolve())
    problem = make_problem("ct", parse_config(config), 0)
    report = json.loads((out / "report.json").read_text())
    assert report["extra"]["test_images"] == len(problem.test_x) == config["n_test"]
    n = config["image_size"]
    assert problem.test_x.shape[1:] == (1, n, n) and problem.test_y.shape[1:] == (1, n, config["angles"])
    gray = [read_image(f, "gray") for f in sorted(colour_folder.glob("*.png"))]
    assert all(_is_crop_of(x, gray) for x in problem.test_x)  # the folder's images, in grayscale
    implicit = deq_imaging.load_model(out / "models" / "implicit")
    psnr, _ = mean_scores(implicit(problem.test_y), problem.test_x)
    assert psnr == pytest.approx(
        report["quality"]["implicit"][report["iterations"].index(implicit.steps)], abs=0.01
    )
    explicit = deq_imaging.load_model(out / "models" / "explicit")
    psnr, _ = mean_scores(explicit(problem.test_y), problem.test_x)
    assert psnr == pytest.approx(report["quality"]["explicit"], abs=0.01)


def _write(folder, count: int, size: int, garbage: bool = False):
    """``count`` gray PNGs of ``size`` x ``size`` in ``folder`` (the last one not an image if ``garbage``)."""
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.full((size, size), 30 * i, np.uint8)).save(folder / f"im{i}.png")
    if garbage:
        (folder / "notes.png").write_text("not an image")
    return folder


@pytest.mark.parametrize(
    ("count", "size", "garbage", "message"),
    [
        (2, 40, False, r"need at least 3 images to split into train/val/test, got 2"),
        (8, 16, False, r"none of its 5 training images is at least 32x32 \(patch_size\)"),
        (8, 40, True, r"notes\.png: not a readable image file"),
    ],
    ids=["too-few", "too-small", "not-an-image"],
)
def test_ct_folder_it_cannot_use_is_one_clear_error(
    tmp_path, monkeypatch, capsys, count, size, garbage, message
):
    monkeypatch.setenv("DEQ_SMOKE", "1")
    folder = _write(tmp_path / "bad", count, size, garbage)
    argv = ["run", "imaging", "--task", "ct", "--quick", "--backend", BACKEND, "--out", str(tmp_path / "r")]
    assert cli.main([*argv, "--data", str(folder)]) == 2
    err = capsys.readouterr().err
    assert re.match(rf"deq: error: .*{re.escape(str(folder.resolve()))}.*{message}", err), err
    assert err.count("\n") == 1
    assert not (tmp_path / "r" / "report.json").exists()
