"""LP models: shapes, parameter counts, gradients, contraction (each backend in its own venv)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from deq_core.config import SolveOptions
from deq_core.errors import ConfigError
from deq_opt.baselines.pdhg import PDHGOptions
from deq_opt.datasets import random_lp
from deq_opt.datasets.labels import label
from deq_opt.models import (
    ModelSpec,
    decode,
    explicit_params,
    featurize,
    fit_scales,
    gnn_params,
    pdhg_params,
)
from deq_opt.models.spec import deq_solve
from deq_opt.models.training import TrainRun, train_config
from deq_opt.plugin import TASKS, _config, default_config

BACKEND = os.environ.get("DEQ_BACKEND", "torch")


def _data(tmp_path, count: int = 6):
    data = label("random_lp", {"m": 4, "n": 9, "nnz": 16}, count, 0, workers=1, cache=tmp_path)
    scales = fit_scales(data.lps, data.x, data.y)
    return data, scales, featurize(data.lps, scales)


def test_featurize_rejects_mixed_shapes() -> None:
    lps = [random_lp(4, 9, 16, seed=0), random_lp(5, 9, 16, seed=1)]
    with pytest.raises(ValueError, match="shape"):
        featurize(lps, fit_scales(lps[:1], np.zeros((1, 9)), np.zeros((1, 4))))


def test_label_cache_roundtrip(tmp_path) -> None:
    first, _, _ = _data(tmp_path)
    second, _, _ = _data(tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    np.testing.assert_array_equal(first.x, second.x)
    assert np.all(first.lps[0].lo - 1e-9 <= first.x[0]) and np.all(first.x[0] <= first.lps[0].hi + 1e-9)


@pytest.mark.parametrize("task", list(TASKS))
def test_default_configs_validate(task: str) -> None:
    for quick in (True, False):
        cfg = _config(default_config(task, quick))
        assert cfg.budgets[-1] >= 2 * cfg.train_iter
    with pytest.raises(ConfigError, match="unknown opt task"):
        default_config("nope", True)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"hiden": 8}, r"unknown field\(s\) \['hiden'\]"),
        ({"pdhg_damping": 0.0}, "Picard.damping"),
        ({"train_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"gamma": 1.0}, "ModelSpec.gamma"),
        ({"hidden": 0}, "ModelSpec.hidden"),
        ({"warm_budgets": [3]}, r"warm_budgets \[3\] are not in budgets"),
    ],
)
def test_config_mistakes_are_config_errors(change: dict, match: str) -> None:
    """A wrong key or value anywhere in an opt config (its solve options included) is a ConfigError."""
    with pytest.raises(ConfigError, match=match):
        _config(default_config("random-lp", True) | change)


def test_solve_options_are_one_nested_value() -> None:
    """The config's flat solve knobs become one SolveOptions; the DEQ-GNN's is the same, undamped."""
    cfg = _config(default_config("random-lp", True) | {"tol": 1e-3, "train_iter": 7, "pdhg_damping": 0.25})
    pdhg, gnn = cfg.spec.solve_options("pdhg"), cfg.spec.solve_options("gnn")
    assert isinstance(pdhg, SolveOptions) and pdhg is cfg.spec.solve
    assert (pdhg.max_iter, pdhg.stop.rtol, pdhg.solver.damping) == (7, 1e-3, 0.25)
    assert gnn.solver.damping == 1.0 and (gnn.backward, gnn.stop, gnn.max_iter) == (
        pdhg.backward,
        pdhg.stop,
        pdhg.max_iter,
    )
    with pytest.raises(ConfigError, match="PDHGOptions.tol"):
        PDHGOptions(tol=0.0)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_models_shapes_gradients_contraction(backend: str, tmp_path) -> None:
    pytest.importorskip(backend)
    import importlib

    mod = importlib.import_module(f"deq_opt.models.{backend}")
    data, scales, graphs = _data(tmp_path)
    spec = ModelSpec(hidden=8, solve=deq_solve(train_iter=4))
    models = mod.build_models(spec, 9, 4)
    target = mod.param_count(models["pdhg"])
    assert target == pdhg_params(8)
    assert mod.param_count(models["gnn"]) == gnn_params(spec.gnn_width)
    assert mod.param_count(models["explicit"]) == explicit_params(spec.explicit_width, 4)
    for name, count in (("gnn", gnn_params), ("explicit", lambda d: explicit_params(d, 4))):
        width = spec.gnn_width if name == "gnn" else spec.explicit_width
        assert abs(mod.param_count(models[name]) - target) <= count(width + 1) - count(width)
    for name, model in models.items():
        budget = 3 if name != "explicit" else None
        px, py = mod.predict(model, graphs, budget, "cpu")
        assert px.shape == (6, 9) and py.shape == (6, 4) and np.all(np.isfinite(px))
        # chunks that do not divide the batch (padded in JAX) give the same predictions
        cx, cy = mod.predict(model, graphs, budget, "cpu", chunk=4)
        np.testing.assert_allclose(np.concatenate([cx, cy], 1), np.concatenate([px, py], 1), atol=1e-5)
        x, y = decode(data.lps, px, py, scales)
        assert np.all(x >= data.lps[0].lo - 1e-9)
        for warm_start in (False, True) if name != "explicit" else (False,):
            run = TrainRun(train_config(2, 0), batch=4, lr=1e-2, warm_start=warm_start)
            trained, loss = mod.train(model, graphs, data.x / scales.x, data.y / scales.y, run, "cpu")
            assert np.isfinite(loss)
            qx, _ = mod.predict(trained, graphs, budget, "cpu")
            assert not np.allclose(qx, px), f"{name}: training did not change the parameters"
            model, px = trained, qx
    # the DEQ-GNN is a contraction: its residual shrinks geometrically with the budget
    r4, r16 = (mod.residual(models["gnn"], graphs, t, "cpu").max() for t in (4, 16))
    assert r16 < r4 or r16 < 1e-6
