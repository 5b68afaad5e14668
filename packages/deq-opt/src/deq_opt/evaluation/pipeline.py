"""One run of an LP task, backend-free: label data, train through a backend module, evaluate per budget.

The backend module (``deq_opt.models.torch`` or ``deq_opt.models.jax``) provides ``build_models``,
``train``, ``predict``, ``residual`` and ``param_count``; everything else here is numpy and OR-Tools.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from deq_core.errors import ConfigError
from deq_opt.baselines.ortools_lp import solve_pdlp
from deq_opt.datasets.labels import LabelledSet, label, split_seeds
from deq_opt.evaluation.figures import plot_budget_metrics, plot_warm_start
from deq_opt.evaluation.lipschitz import lipschitz_ratios
from deq_opt.evaluation.metrics import solution_metrics
from deq_opt.evaluation.own_data import label_files, split
from deq_opt.evaluation.warmstart import warm_start_comparison
from deq_opt.models.files import write_models
from deq_opt.models.graphs import Scales, decode, featurize, fit_scales
from deq_opt.models.spec import ModelSpec, deq_solve
from deq_opt.models.training import TrainRun, train_config
from deq_opt.operators.lp import LinearProgram

__all__ = ["MODEL_NAMES", "OptConfig", "run_task"]

MODEL_NAMES = {"pdhg": "learned weight-tied PDHG (DEQ)", "gnn": "DEQ-GNN"}


@dataclass(frozen=True)
class OptConfig:
    """Every knob of an ``opt`` run; the flat ``tol``, ``train_iter`` and ``pdhg_damping`` (the user-facing
    config) become the models' one nested solve (:attr:`spec`). Mistakes are a ConfigError."""

    generator: str = "random_lp"
    params: dict[str, Any] = field(default_factory=dict)
    n_train: int = 2500
    n_test: int = 1000
    hidden: int = 41
    gamma: float = 0.99
    explicit_layers: int = 4
    train_iter: int = 16
    tol: float = 1e-4
    pdhg_damping: float = 0.5
    steps: int = 600
    batch: int = 64
    lr: float = 3e-3
    dual_weight: float = 1.0
    warm_start_training: bool = False
    budgets: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    lipschitz_samples: int = 64
    lipschitz_directions: int = 4
    lipschitz_eps: float = 1e-4
    warm_instances: int = 8
    warm_budgets: tuple[int, ...] = (4, 16, 64)
    warm_tolerances: tuple[float, ...] = (1e-4, 1e-6)
    workers: int | None = None
    data: str | None = None  # a folder of your own MPS files instead of the generator (see own_data)

    def __post_init__(self) -> None:
        """Validate the model and solve settings (building :attr:`spec`), the warm-start budgets and data."""
        _ = self.spec
        if self.data is not None and not isinstance(self.data, str):
            raise ConfigError(f"OptConfig.data must be a folder of MPS files (a path), got {self.data!r}")
        missing = sorted(set(self.warm_budgets) - set(self.budgets))
        if missing:
            raise ConfigError(f"OptConfig.warm_budgets {missing} are not in budgets {list(self.budgets)}")

    @functools.cached_property
    def spec(self) -> ModelSpec:
        """The model hyper-parameters; the solve options as one :class:`~deq_core.config.SolveOptions`."""
        solve = deq_solve(self.train_iter, self.tol, self.pdhg_damping)
        return ModelSpec(self.hidden, self.gamma, self.explicit_layers, solve)


def _predictor(backend: ModuleType, model: Any, budget: int | None, scales: Scales, device: str, edges: int):
    """``lps -> decoded (x, y)`` of ``model`` at ``budget`` (for the Lipschitz perturbations)."""

    def predict(lps: Sequence[LinearProgram]) -> tuple[np.ndarray, np.ndarray]:
        px, py = backend.predict(model, featurize(lps, scales, edges), budget, device)
        return decode(lps, px, py, scales)

    return predict


def _evaluate(
    backend: ModuleType, model: Any, test: LabelledSet, budget: int | None, cfg: OptConfig, ctx: dict
) -> tuple[dict[str, float], dict[str, float], tuple[np.ndarray, np.ndarray]]:
    """(solution metrics, Lipschitz summary, decoded predictions) of ``model`` at ``budget``."""
    px, py = backend.predict(model, ctx["graphs"], budget, ctx["device"])
    x, y = decode(test.lps, px, py, ctx["scales"])
    metrics = solution_metrics(test.lps, x, y, test.x, test.y)
    lip_lps = test.lps[: cfg.lipschitz_samples]
    predict = _predictor(backend, model, budget, ctx["scales"], ctx["device"], ctx["graphs"].rows.shape[1])
    lip = lipschitz_ratios(predict, lip_lps, cfg.lipschitz_directions, cfg.lipschitz_eps, ctx["seed"])
    return metrics, lip, (x, y)


def _speedups(warm: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Cold-start iterations / warm-start iterations per start and tolerance (inf when a start needs 0)."""
    cold = warm["cold"]
    return {
        name: {
            tol: cold[tol]["iterations"] / row["iterations"] if row["iterations"] else float("inf")
            for tol, row in rows.items()
        }
        for name, rows in warm.items()
        if name != "cold"
    }


def _warm_by_budget(
    backend: ModuleType,
    model: Any,
    test: LabelledSet,
    predictions: dict[int, tuple[np.ndarray, np.ndarray]],
    cold: dict[str, dict[str, float]],
    cfg: OptConfig,
    ctx: dict,
) -> dict[str, Any]:
    """PDLP from the learned PDHG's primal+dual prediction after each of ``cfg.warm_budgets`` iterations.

    Per budget: the prediction's errors, the model's inference seconds per instance (a batched forward on
    ``ctx["device"]``), and PDLP iterations, seconds and speed-up over the cold start per tolerance.
    """
    out: dict[str, Any] = {}
    n_warm = len(next(iter(predictions.values()))[0]) if predictions else 0
    lps = test.lps[:n_warm]
    graphs = ctx["graphs"].take(slice(0, n_warm))
    for t, (x, y) in sorted(predictions.items()):
        start = time.perf_counter()
        backend.predict(model, graphs, t, ctx["device"])
        infer = (time.perf_counter() - start) / max(n_warm, 1)
        runs = warm_start_comparison(lps, {"warm": (x, y)}, cfg.warm_tolerances)["warm"]
        errors = solution_metrics(lps, x, y, test.x[:n_warm], test.y[:n_warm])
        out[str(t)] = {
            "primal_error": errors["primal_error"],
            "dual_error": errors["dual_error"],
            "inference_seconds": infer,
            "pdlp": {
                tol: row | {"speedup": cold[tol]["iterations"] / max(row["iterations"], 1.0)}
                for tol, row in runs.items()
            },
        }
    return out


def run_task(
    task: str, cfg: OptConfig, backend: ModuleType, device: str, out_dir: Path, seed: int
) -> dict[str, Any]:
    """Label; train the three models (same data, same steps); evaluate per budget; baselines; warm starts.

    The reported implicit model is the learned weight-tied PDHG; the DEQ-GNN's numbers go to ``extra``.
    Returns the pieces of the report: ``iterations``, ``quality``, ``lipschitz``, ``params``, ``baselines``,
    ``explicit``, ``extra``. The three models go to ``out_dir/models/`` (:mod:`deq_opt.models.files`).
    """
    s_train, s_test, _ = split_seeds(seed)
    t0 = time.perf_counter()
    if cfg.data is None:
        train = label(cfg.generator, cfg.params, cfg.n_train, s_train, workers=cfg.workers)
        test = label(cfg.generator, cfg.params, cfg.n_test, s_test, workers=cfg.workers)
        test_set = {"generator": cfg.generator, "params": cfg.params, "count": cfg.n_test, "seed": s_test}
    else:
        train, test, names = split(*label_files(Path(cfg.data), cfg.workers), s_test)
        test_set = {"data": cfg.data, "files": names}
    label_seconds = time.perf_counter() - t0
    scales = fit_scales(train.lps, train.x, train.y)
    edges = max(lp.A.nnz for lp in [*train.lps, *test.lps])
    graphs_train = featurize(train.lps, scales, edges)
    ctx = {"graphs": featurize(test.lps, scales, edges), "scales": scales, "device": device, "seed": seed}
    m, n = train.lps[0].shape
    models = backend.build_models(cfg.spec, n, m)
    run = TrainRun(train_config(cfg.steps, seed), cfg.batch, cfg.lr, cfg.dual_weight, cfg.warm_start_training)
    losses, seconds = {}, {}
    for name in ("pdhg", "gnn", "explicit"):
        t = time.perf_counter()
        x, y = train.x / scales.x, train.y / scales.y
        models[name], losses[name] = backend.train(models[name], graphs_train, x, y, run, device)
        seconds[name] = time.perf_counter() - t
    per_budget: dict[str, dict[str, list[float]]] = {"pdhg": {}, "gnn": {}}
    lipschitz: dict[str, dict[str, list[float]]] = {
        "pdhg": {"max": [], "mean": []},
        "gnn": {"max": [], "mean": []},
    }
    last: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n_warm = min(cfg.warm_instances, len(test.lps))
    by_budget: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for name in ("pdhg", "gnn"):
        for t in cfg.budgets:
            metrics, lip, last[name] = _evaluate(backend, models[name], test, t, cfg, ctx)
            if name == "pdhg" and t in cfg.warm_budgets:
                by_budget[t] = (last[name][0][:n_warm], last[name][1][:n_warm])
            res = backend.residual(models[name], ctx["graphs"], t, device)
            metrics |= {"residual_mean": float(res.mean()), "residual_max": float(res.max())}
            for key, value in metrics.items():
                per_budget[name].setdefault(key, []).append(value)
            for key in ("max", "mean"):
                lipschitz[name][key].append(lip[key])
    explicit_metrics, explicit_lip, last["explicit"] = _evaluate(
        backend, models["explicit"], test, None, cfg, ctx
    )
    warm_lps = test.lps[:n_warm]
    px, py = (v[:n_warm] for v in last["pdhg"])
    gx, gy = (v[:n_warm] for v in last["gnn"])
    ex, ey = (v[:n_warm] for v in last["explicit"])
    starts = {
        "cold": (None, None),
        "learned PDHG primal only": (px, None),
        "learned PDHG primal+dual": (px, py),
        "DEQ-GNN primal+dual": (gx, gy),
        "explicit GNN primal+dual": (ex, ey),
        "GLOP optimum primal+dual": (test.x[:n_warm], test.y[:n_warm]),
    }
    warm = warm_start_comparison(warm_lps, starts, cfg.warm_tolerances)
    warm_budget = _warm_by_budget(backend, models["pdhg"], test, by_budget, warm["cold"], cfg, ctx)
    warm_error = {
        name: solution_metrics(warm_lps, x[:n_warm], y[:n_warm], test.x[:n_warm], test.y[:n_warm])
        for name, (x, y) in (
            ("learned PDHG", last["pdhg"]),
            ("DEQ-GNN", last["gnn"]),
            ("explicit GNN", last["explicit"]),
        )
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_warm_start(
        warm,
        out_dir / "warm_start.png",
        f"opt/{task}: PDLP warm start (mean of {n_warm} test LPs)",
        by_budget=warm_budget,
    )
    plot_budget_metrics(
        cfg.budgets,
        {f"{title} ({task})": per_budget[name] for name, title in MODEL_NAMES.items()},
        out_dir / "budget_metrics.png",
        f"opt/{task}: test metrics per iteration budget",
    )
    pdlp = [solve_pdlp(lp, tol=1e-4) for lp in warm_lps]
    glop_seconds = float(np.mean(test.seconds))
    baselines = {
        "glop (exact, labels)": {"value": 0.0, "seconds": glop_seconds},
        "pdlp tol 1e-4": {
            "value": solution_metrics(
                warm_lps,
                np.stack([r.x for r in pdlp]),
                np.stack([r.y for r in pdlp]),
                test.x[:n_warm],
                test.y[:n_warm],
            )["primal_error"],
            "seconds": float(np.mean([r.seconds for r in pdlp])),
        },
    }
    apply = {
        "scales": dataclasses.asdict(scales),
        "steps": cfg.budgets[-1],
        "pdlp_tolerance": cfg.warm_tolerances[0],
        "test_set": test_set,
    }
    last_budget = {name: {key: v[-1] for key, v in per_budget[name].items()} for name in per_budget}
    metrics = {name: {**last_budget[name], "steps": cfg.budgets[-1]} for name in last_budget}
    config = {**dataclasses.asdict(cfg), "m": m, "n": n}
    write_models(
        out_dir,
        models,
        backend,
        task=task,
        config=config,
        apply=apply,
        metrics={**metrics, "explicit": explicit_metrics},
    )
    return {
        "iterations": list(cfg.budgets),
        "quality": per_budget["pdhg"]["primal_error"],
        "lipschitz": {**lipschitz["pdhg"], "explicit": explicit_lip},
        "explicit": explicit_metrics["primal_error"],
        "baselines": baselines,
        "params": {
            "implicit": backend.param_count(models["pdhg"]),
            "explicit": backend.param_count(models["explicit"]),
        },
        "extra": {
            "implicit_model": MODEL_NAMES["pdhg"],
            "learned_pdhg_per_budget": per_budget["pdhg"],
            "deq_gnn_per_budget": per_budget["gnn"],
            "deq_gnn_lipschitz": lipschitz["gnn"],
            "deq_gnn_params": backend.param_count(models["gnn"]),
            "explicit_metrics": explicit_metrics,
            "warm_start": warm,
            "warm_start_speedup": _speedups(warm),
            "warm_start_by_budget": warm_budget,
            "warm_start_prediction_error": warm_error,
            "train_loss": losses,
            "train_seconds": seconds,
            "label_seconds": label_seconds,
            "shape": [m, n],
            "figures": ["warm_start.png", "budget_metrics.png"],
        },
    }
