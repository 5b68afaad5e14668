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


def test_ct_refuses_a_folder_instead_of_ignoring_it(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEQ_SMOKE", "1")
    argv = ["run", "imaging", "--task", "ct", "--quick", "--backend", BACKEND, "--out", str(tmp_path / "r")]
    assert cli.main([*argv, "--data", str(folder)]) == 2
    err = capsys.readouterr().err
    assert re.match(r"deq: error: the ct task trains on simulated phantoms; --data .* deblur", err), err
    assert err.count("\n") == 1
