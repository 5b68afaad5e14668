"""The ``pde`` domain plugin: configs, cached data, backend dispatch, classical baselines, report, figures.

Imports no framework at module level (``deq list`` stays fast); the backend is imported inside :func:`run`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.analysis import build_report
from deq_core.config import from_dict
from deq_core.domains import Domain, smoke
from deq_core.errors import ConfigError
from deq_pde.datasets import (
    DarcyConfig,
    NonlinearConfig,
    generate_darcy,
    generate_nonlinear,
    own,
    store,
)
from deq_pde.evaluation.classical import classical_baselines, darcy_runners, nonlinear_runners
from deq_pde.evaluation.figures import plot_predictions
from deq_pde.evaluation.pipeline import run_models
from deq_pde.evaluation.predict import predict
from deq_pde.evaluation.protocol import RunSettings, Split
from deq_pde.models.files import load, model_name, save_model
from deq_pde.models.settings import TrainSettings, model_settings
from deq_pde.pretrained import folder as pretrained_folder

TASKS = {
    "darcy": "Darcy flow -div(a grad u) = 1: thresholded-GRF coefficient (12/3) -> FEM solution on a grid",
    "nonlinear": "nonlinear diffusion -div((1 + u^2) grad u) = f: smooth random forcing -> FEM solution",
}
INPUTS = {"darcy": "coefficient", "nonlinear": "forcing"}
NORMALISATION = ("input_mean", "input_std", "output_mean", "output_std")
CACHE_ENV = "DEQ_PDE_CACHE"


@dataclass(frozen=True)
class PDEConfig:
    """Every knob of a ``pde`` run; :func:`config_from_dict` names unknown keys in a ConfigError."""

    grid_size: int = 33
    n_train: int = 1000
    n_test: int = 100
    width: int = 32
    modes: int = 12
    projection: int = 128
    solver: str = "picard"
    train_iters: int = 4
    phantom_steps: int = 3
    phantom_tau: float = 0.8
    contraction: float = 1.1
    epochs: int = 12
    batch: int = 20
    lr: float = 1e-2
    weight_decay: float = 1e-4
    explicit_depths: tuple[int, ...] = (1,)
    budgets: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    sine_modes: int = 2
    scales: tuple[float, ...] = (1.0,)
    lipschitz_samples: int = 16
    power_iters: int = 0
    timing_samples: int = 32
    figure_samples: int = 3
    classical_samples: int = 4
    classical_max_iter: int = 20000
    target: float = 1e-2
    workers: int = 2  # data-generation processes; 0 generates in this process
    cache_dir: str | None = None
    data: str | None = None  # an own-data .npz (deq_pde.datasets.own) instead of generated samples

    def settings(self) -> RunSettings:
        """The backend-facing model, training and analysis settings."""
        return RunSettings(
            model=model_settings(dataclasses.asdict(self)),
            train=TrainSettings(self.epochs, self.batch, self.lr, self.weight_decay),
            explicit_depths=tuple(self.explicit_depths),
            budgets=tuple(self.budgets),
            sine_modes=self.sine_modes,
            scales=tuple(self.scales),
            lipschitz_samples=self.lipschitz_samples,
            power_iters=self.power_iters,
            timing_samples=self.timing_samples,
            figure_samples=self.figure_samples,
        )


def config_from_dict(config: dict[str, Any]) -> PDEConfig:
    """The :class:`PDEConfig` of a config mapping; an unknown key or a bad value is a ConfigError."""
    return from_dict(PDEConfig, config)


def default_config(task: str, quick: bool) -> dict[str, Any]:
    """The full config (a GPU) or the ``quick`` one (2 CPU cores, < 10 min); ``DEQ_SMOKE=1`` shrinks it."""
    if task not in TASKS:
        raise ConfigError(f"unknown pde task {task!r}; valid tasks: {', '.join(TASKS)}")
    config = PDEConfig(
        grid_size=65,
        n_train=4000,
        n_test=500,
        epochs=100,
        lr=5e-3,
        explicit_depths=(1, 2, 4),
        budgets=(1, 2, 4, 8, 16, 32, 64, 128),
        sine_modes=3,
        lipschitz_samples=64,
        power_iters=10,
        timing_samples=128,
        classical_samples=16,
    )
    if quick:
        config = PDEConfig()
    if smoke():
        config = dataclasses.replace(
            config,
            grid_size=9,
            n_train=16,
            n_test=8,
            width=4,
            modes=3,
            projection=8,
            train_iters=2,
            phantom_steps=1,
            epochs=1,
            batch=8,
            explicit_depths=(1,),
            budgets=(1, 2, 4),
            sine_modes=1,
            lipschitz_samples=2,
            power_iters=0,
            timing_samples=2,
            figure_samples=1,
            classical_samples=1,
            classical_max_iter=500,
            workers=0,
        )
    return dataclasses.asdict(config)


def _data_config(task: str, cfg: PDEConfig, seed: int) -> DarcyConfig | NonlinearConfig:
    if task == "darcy":
        return DarcyConfig(grid_size=cfg.grid_size, seed=seed)
    return NonlinearConfig(grid_size=cfg.grid_size, seed=seed)


def _dataset(task: str, cfg: PDEConfig, data_cfg: DarcyConfig | NonlinearConfig, out_dir: Path) -> dict:
    """Generate (or reuse from the cache) ``n_train + n_test`` samples, or read (and label) ``cfg.data``.

    Returns the ``input`` and ``solution`` grids, the dataset ``folder`` and ``runners(i)``, the classical
    solvers of sample ``i``.
    """
    root = Path(cfg.cache_dir or os.environ.get(CACHE_ENV) or out_dir / "data")
    total = cfg.n_train + cfg.n_test
    with contextlib.ExitStack() as stack:  # in-process generation with workers=0 (tiny runs: no start-up)
        executor = stack.enter_context(cf.ThreadPoolExecutor(max_workers=1)) if cfg.workers == 0 else None
        options = {"workers": cfg.workers, "executor": executor, "progress": not smoke()}
        if cfg.data is not None:
            return _own_dataset(task, cfg, data_cfg, root, options)
        folder = root / f"{task}-{store.config_hash(dataclasses.asdict(data_cfg))[:12]}"
        generate = generate_darcy if task == "darcy" else generate_nonlinear
        generate(folder, total, data_cfg, **options)
    keys = (INPUTS[task], "solution", *(("field",) if task == "darcy" else ()))
    arrays = dict(zip(keys, store.load(folder, keys, total), strict=True))
    runners = darcy_runners if task == "darcy" else nonlinear_runners
    sources = arrays["field" if task == "darcy" else "forcing"]
    return {
        "input": arrays[INPUTS[task]],
        "solution": arrays["solution"],
        "folder": str(folder),
        "runners": lambda i: runners(data_cfg, sources[i]),
    }


def _own_dataset(
    task: str, cfg: PDEConfig, data_cfg: DarcyConfig | NonlinearConfig, root: Path, options: dict
) -> dict:
    """The first ``n_train + n_test`` fields of the own-data file ``cfg.data``, labelled by FEM if needed."""
    try:
        inputs, solutions, folder = own.load_own(cfg.data, task, data_cfg, root, **options)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    total = cfg.n_train + cfg.n_test
    if inputs.shape[0] < total:
        raise ConfigError(
            f"--data {cfg.data} holds {inputs.shape[0]} fields, fewer than n_train + n_test = {total}; "
            f"lower them with --set n_train=... --set n_test=..."
        )
    runners = own.darcy_runners if task == "darcy" else nonlinear_runners
    return {
        "input": inputs[:total],
        "solution": solutions[:total],
        "folder": str(folder or Path(cfg.data).resolve()),
        "runners": lambda i: runners(data_cfg, inputs[i]),
    }


def _timed(entry: Any) -> dict[str, Any]:
    return {
        "error": entry.error,
        "seconds": entry.seconds,
        "iterations": entry.iterations,
        "reached": entry.reached,
    }


def run(
    task: str, config: dict[str, Any], backend: str, device: str, out_dir: Path, seed: int
) -> dict[str, Any]:
    """Train FNO-DEQ and the same-size FNO on ``backend``, time classical solvers, return the report."""
    if task not in TASKS:
        raise ConfigError(f"unknown pde task {task!r}; valid tasks: {', '.join(TASKS)}")
    cfg = config_from_dict(config)
    settings = cfg.settings()
    start = time.perf_counter()
    out_dir = Path(out_dir)
    data_cfg = _data_config(task, cfg, seed)
    t0 = time.perf_counter()
    data = _dataset(task, cfg, data_cfg, out_dir)
    data_seconds = time.perf_counter() - t0
    n, n_grid = cfg.n_train, data["input"].shape[-1]
    split = Split(data["input"][:n], data["solution"][:n], data["input"][n:], data["solution"][n:])
    if backend == "torch":
        from deq_pde.evaluation.torch import backend as adapter
    elif backend == "jax":
        from deq_pde.evaluation.jax import backend as adapter
    else:
        raise ConfigError(f"unknown backend {backend!r}; valid backends: torch, jax")
    t0 = time.perf_counter()
    result = run_models(split, settings, adapter(device), seed)
    model_seconds = time.perf_counter() - t0

    scaling = result["scaling"]
    errors = scaling["quality"]
    seconds = result["seconds_per_budget"]
    best = int(np.argmin(errors))
    reached = [i for i, e in enumerate(errors) if e <= cfg.target]
    deq_time = {
        "target": cfg.target,
        "budget": scaling["iterations"][reached[0]] if reached else None,
        "seconds": seconds[reached[0]] if reached else None,
        "best_error": errors[best],
        "best_budget": scaling["iterations"][best],
        "best_seconds": seconds[best],
    }

    t0 = time.perf_counter()
    k = cfg.classical_samples
    targets = {"target": cfg.target, "deq_best": max(errors[best], 1e-12)}
    classical = classical_baselines(
        [data["runners"](i) for i in range(n, n + k)], split.test_targets[:k], targets, cfg.classical_max_iter
    )
    classical_seconds = time.perf_counter() - t0

    shown = slice(0, cfg.figure_samples)
    plot_predictions(
        out_dir / "samples.png",
        split.test_inputs[shown],
        split.test_targets[shown],
        result["figure"],
        input_name="coefficient" if task == "darcy" else "forcing f",
        model_name=f"FNO-DEQ ({max(cfg.budgets)} it.)",
    )
    explicit = result["explicit"]
    report = build_report(
        domain="pde",
        task=task,
        backend=backend,
        device=device,
        iterations=scaling["iterations"],
        metric="rel_l2",
        higher_is_better=False,
        implicit=errors,
        explicit=explicit[1]["error"],
        baselines={
            name: {"value": entry.error, "seconds": entry.seconds}
            for name, entry in classical["target"].items()
        },
        lipschitz={**scaling["lipschitz"], "explicit": result["explicit_lipschitz"]},
        params={"implicit": result["params"], "explicit": explicit[1]["params"]},
        seconds=time.perf_counter() - start,
        config=_reported(config, seed),
        extra={
            "seconds_per_budget": seconds,
            "time_to_target": {
                "deq": deq_time,
                "classical": {name: {s: _timed(e) for s, e in c.items()} for name, c in classical.items()},
            },
            "explicit_fno": {str(d): v for d, v in explicit.items()},
            "train_loss": result["train_loss"],
            "stage_seconds": {"data": data_seconds, "models": model_seconds, "classical": classical_seconds},
            "dataset": data["folder"],
            "figures": ["samples.png"],
        },
    )
    models = out_dir / "models"
    _save_models(models, task, backend, _reported(config, seed), data_cfg, n_grid, result, report)
    return report


def _reported(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """The config as the report and the model folders record it: with the seed, ``data`` only when set."""
    return {**{k: v for k, v in config.items() if k != "data" or v is not None}, "seed": seed}


def _save_models(
    folder: Path,
    task: str,
    backend: str,
    config: dict[str, Any],
    data_cfg: DarcyConfig | NonlinearConfig,
    grid_size: int,
    result: dict[str, Any],
    report: dict[str, Any],
) -> None:
    """Keep every model of the run in ``folder/NAME`` with what applying it needs and its report scores."""
    iterations, errors = report["iterations"], report["quality"]["implicit"]
    steps = max(iterations)
    apply = {
        "input": INPUTS[task],
        "grid_size": grid_size,
        "problem": TASKS[task],
        "data": dataclasses.asdict(data_cfg),
        "normalisation": dict(zip(NORMALISATION, result["normalisation"], strict=True)),
    }
    for depth, model in result["models"].items():
        if depth is None:
            extra = {"steps": steps, "budgets": iterations}
            metrics = {"rel_l2": errors[iterations.index(steps)], "steps": steps, "rel_l2_per_budget": errors}
        else:  # depth 1 is the report's "explicit"
            extra, metrics = {}, {"rel_l2": report["extra"]["explicit_fno"][str(depth)]["error"]}
        save_model(
            folder / model_name(depth),
            model,
            depth,
            task=task,
            backend=backend,
            config=config,
            apply={**apply, **extra},
            metrics=metrics,
        )


domain = Domain(
    name="pde",
    tasks=TASKS,
    default_config=default_config,
    run=run,
    description="PDE neural operators: FNO-DEQ vs explicit FNO vs classical FEM solvers (basix)",
    load_model=load,
    predict=predict,
    pretrained=pretrained_folder,
)
