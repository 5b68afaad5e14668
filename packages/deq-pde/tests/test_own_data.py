"""``deq run pde --data FILE.npz``: own fields, labelled by our FEM solver (cached) or with solutions."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

import numpy as np
import pytest
from backends import FRAMEWORKS

import deq_pde
from deq_core import cli
from deq_core.errors import ConfigError
from deq_pde.datasets import (
    DarcyConfig,
    NonlinearConfig,
    darcy_sample,
    darcy_setup,
    nonlinear_sample,
    own,
    store,
)
from deq_pde.models.fourier import relative_l2
from deq_pde.plugin import default_config, domain

BACKEND = FRAMEWORKS[0] if FRAMEWORKS else None
needs_backend = pytest.mark.skipif(BACKEND is None, reason="needs torch or jax")


def test_nonlinear_labels_are_the_generated_solutions():
    config = NonlinearConfig(grid_size=9)
    sample = nonlinear_sample(config, 3)
    assert np.allclose(
        own.label("nonlinear", asdict(config), sample["forcing"]), sample["solution"], atol=1e-10
    )


def test_darcy_labels_read_the_grid_as_documented():
    """A bilinear coefficient is interpolated exactly: the label is the FEM solution for a(x, y) itself."""
    config = DarcyConfig(grid_size=9)
    axis = np.linspace(0, 1, 9)
    y, x = np.meshgrid(axis, axis, indexing="ij")  # entry [i, j] at (x_j, y_i)
    bilinear = lambda x, y: 1 + 2 * x + 0.5 * y + x * y  # noqa: E731
    problem, evaluator = darcy_setup(config)
    matrix, rhs = problem.system(bilinear(*np.moveaxis(problem.space.quadrature_points, -1, 0)))
    from scipy.sparse.linalg import spsolve

    expected = evaluator(problem.bc.expand(spsolve(matrix.tocsc(), rhs))).reshape(9, 9)
    assert np.allclose(own.label("darcy", asdict(config), bilinear(x, y)), expected, atol=1e-12)
    assert not np.allclose(own.label("darcy", asdict(config), bilinear(y, x)), expected, atol=1e-6)


def _darcy_file(path, count=24, **extra):
    samples = [darcy_sample(DarcyConfig(grid_size=9), i) for i in range(count)]
    coefficient = np.stack([s["coefficient"] for s in samples])
    np.savez(path, coefficient=coefficient, **{k: f(samples) for k, f in extra.items()})
    return coefficient


@needs_backend
def test_a_run_on_own_coefficients_labels_them_once_and_its_model_reproduces_the_report(
    tmp_path, monkeypatch, capsys
):
    coefficient = _darcy_file(tmp_path / "mine.npz")
    monkeypatch.setenv("DEQ_SMOKE", "1")
    out = tmp_path / "run"
    argv = ["run", "pde", "--task", "darcy", "--quick", "--backend", BACKEND, "--out", str(out)]
    assert cli.main([*argv, "--data", str(tmp_path / "mine.npz")]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["data"] == str((tmp_path / "mine.npz").resolve())
    folder = report["extra"]["dataset"]
    assert re.search(r"data/darcy-own-[0-9a-f]{12}$", folder)
    (labels,) = store.load(folder, ("solution",))
    model = deq_pde.load_model(out / "models" / "implicit")
    error = relative_l2(model(coefficient[16:]).astype(np.float64), labels[16:]).mean()
    assert error == pytest.approx(report["quality"]["implicit"][-1], rel=1e-4)

    def relabel(*args):
        raise AssertionError("the labels were computed again")

    monkeypatch.setattr(own, "label_chunk", relabel)
    data = DarcyConfig(grid_size=9)
    again = own.load_own(tmp_path / "mine.npz", "darcy", data, out / "data", workers=1)
    assert np.array_equal(again[1], labels) and str(again[2]) == folder


@needs_backend
def test_a_run_on_own_pairs_trains_on_their_solutions(tmp_path, monkeypatch, capsys):
    config = NonlinearConfig(grid_size=9)
    samples = [nonlinear_sample(config, i) for i in range(24)]
    forcing = np.stack([s["forcing"] for s in samples])
    solution = np.stack([s["solution"] for s in samples]) * 2.0  # not what our solver gives: must be used
    np.savez(tmp_path / "pairs.npz", forcing=forcing, solution=solution)
    monkeypatch.setenv("DEQ_SMOKE", "1")
    out = tmp_path / "run"
    argv = ["run", "pde", "--task", "nonlinear", "--quick", "--backend", BACKEND, "--out", str(out)]
    assert cli.main([*argv, "--data", str(tmp_path / "pairs.npz")]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["extra"]["dataset"] == str((tmp_path / "pairs.npz").resolve())
    assert not (out / "data").exists()
    model = deq_pde.load_model(out / "models" / "explicit")
    error = relative_l2(model(forcing[16:]).astype(np.float64), solution[16:]).mean()
    assert error == pytest.approx(report["quality"]["explicit"], rel=1e-4)


@needs_backend
def test_bad_own_data_is_named_before_training(tmp_path, monkeypatch):
    coefficient = _darcy_file(tmp_path / "ok.npz")
    np.save(tmp_path / "a.npy", coefficient)
    np.savez(tmp_path / "other.npz", forcing=coefficient)
    np.savez(tmp_path / "flat.npz", coefficient=coefficient[:, 0])
    np.savez(tmp_path / "nan.npz", coefficient=np.where(coefficient > 5, np.nan, coefficient))
    np.savez(tmp_path / "big.npz", coefficient=np.ones((24, 17, 17)))
    np.savez(tmp_path / "few.npz", coefficient=coefficient[:10])
    np.savez(tmp_path / "pairs.npz", coefficient=coefficient, solution=coefficient[:20])
    np.savez(
        tmp_path / "negative.npz", coefficient=np.where(np.arange(24)[:, None, None] == 19, -1.0, coefficient)
    )
    cases = [
        ("a.npy", "give an .npz file holding 'coefficient'"),
        ("other.npz", r"holds \['forcing'\], no 'coefficient' array"),
        ("flat.npz", r"must have shape \(B, n, n\) with n >= 2, got \(24, 9\)"),
        ("nan.npz", "'coefficient' holds NaN or infinite values"),
        ("big.npz", "holds 17x17 fields but grid_size is 9; run with --set grid_size=17"),
        ("few.npz", "holds 10 fields, fewer than n_train \\+ n_test = 24"),
        ("pairs.npz", r"'solution' has shape \(20, 9, 9\), 'coefficient' \(24, 9, 9\)"),
        ("negative.npz", "field 19 cannot be solved: the Darcy coefficient must be finite and positive"),
    ]
    monkeypatch.setenv("DEQ_SMOKE", "1")
    for name, message in cases:
        config = default_config("darcy", quick=True) | {"data": str(tmp_path / name)}
        with pytest.raises(ConfigError, match=message):
            domain.run("darcy", config, BACKEND, "cpu", tmp_path / f"out-{name}", 0)
        assert not (tmp_path / f"out-{name}" / "models").exists()
