"""The ``toy`` domain plugin: configuration, dispatch to a backend, the report, and its model folders."""

from __future__ import annotations

import dataclasses
import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.analysis import build_report, geometric_budgets
from deq_core.analysis.report import package_versions
from deq_core.domains import Domain, smoke
from deq_core.errors import ConfigError
from deq_core.files import atomic_path
from deq_core.model_files import write_model
from deq_toydomain.problem import baselines, make_problem

TASKS = {
    "sensing": "recover 16-sample smooth signals from 12 random Gaussian measurements",
    "deblur": "recover 16-sample smooth signals from a noisy Gaussian blur",
}


@dataclass(frozen=True)
class ToyConfig:
    """Every knob of a toy run (unknown keys are a TypeError naming them)."""

    n: int = 16
    m: int = 12
    noise: float = 0.01
    n_train: int = 512
    n_test: int = 256
    hidden: int = 32
    train_steps: int = 300
    batch: int = 64
    lr: float = 3e-3
    solver: str = "picard"
    tol: float = 1e-4
    max_iter: int = 30
    budgets: tuple[int, ...] = (1, 2, 3, 5, 8, 13, 20, 30)
    directions: int = 8
    scales: tuple[float, ...] = (1e-2, 1e-1)
    lipschitz_samples: int = 64
    power_iters: int = 20


def default_config(task: str, quick: bool) -> dict[str, Any]:
    """The toy configuration; ``quick`` trains for a few dozen steps, ``DEQ_SMOKE=1`` shrinks everything."""
    config = ToyConfig(m=16 if task == "deblur" else 12)
    if quick:
        config = dataclasses.replace(
            config,
            n_train=256,
            n_test=128,
            train_steps=40,
            budgets=tuple(geometric_budgets(16, 3)),
            directions=4,
            lipschitz_samples=32,
            power_iters=10,
        )
    if smoke():
        config = dataclasses.replace(
            config,
            n_train=32,
            n_test=16,
            train_steps=3,
            batch=16,
            budgets=(1, 3),
            directions=2,
            scales=(1e-1,),
            lipschitz_samples=4,
            power_iters=2,
        )
    return dataclasses.asdict(config)


def run(
    task: str, config: dict[str, Any], backend: str, device: str, out_dir: Path, seed: int
) -> dict[str, Any]:
    """Train the implicit and explicit models on ``backend``, run the scaling analysis, return the report."""
    if task not in TASKS:
        raise ValueError(f"unknown toy task {task!r}; valid tasks: {', '.join(TASKS)}")
    cfg = ToyConfig(**config)
    if cfg.train_steps < 1:
        raise ConfigError(f"train_steps must be >= 1, got {cfg.train_steps}")
    start = time.perf_counter()
    problem = make_problem(task, cfg.n, cfg.m, cfg.n_train, cfg.n_test, cfg.noise, seed)
    if backend not in ("torch", "jax"):
        raise ValueError(f"unknown backend {backend!r}; valid backends: torch, jax")
    module = importlib.import_module(f"deq_toydomain.{backend}")
    result = module.train_and_analyse(problem, cfg, device, seed)
    report = build_report(
        domain="toy",
        task=task,
        backend=backend,
        device=device,
        iterations=result["scaling"]["iterations"],
        metric="mse",
        higher_is_better=False,
        implicit=result["scaling"]["quality"],
        explicit=result["explicit_quality"],
        baselines=baselines(problem),
        lipschitz={**result["scaling"]["lipschitz"], "explicit": result["explicit_lipschitz"]},
        params=result["params"],
        seconds=time.perf_counter() - start,
        config=config,
        extra={"train_loss": result["train_loss"]},
    )
    metrics = {
        "implicit": {"mse": report["quality"]["implicit"][-1], "steps": cfg.budgets[-1]},
        "explicit": {"mse": report["quality"]["explicit"]},
    }
    for name, model in result["models"].items():
        write_model(
            out_dir / "models" / name,
            module.weight_writer(model),
            domain="toy",
            task=task,
            backend=backend,
            name=name,
            model_class=type(model).__name__,
            config={**config, **result["model_config"][name]},
            apply={"operator": problem.operator, "steps": cfg.max_iter},
            metrics=metrics[name],
            versions=package_versions(backend),
        )
    return report


class ToyModel:
    """A loaded toy model: ``model(y, steps=None)`` maps measurements ``(N, m)`` to signals ``(N, n)``."""

    def __init__(self, manifest: dict[str, Any], predictor: Any) -> None:
        self.manifest = manifest
        self._predict = predictor

    def __call__(self, y: Any, steps: int | None = None) -> np.ndarray:
        """The reconstruction of ``y`` after ``steps`` iterations (default: solve to the tolerance)."""
        y = np.asarray(y, dtype=np.float32)
        m = self.manifest["config"]["m"]
        if y.ndim != 2 or y.shape[1] != m:
            raise ConfigError(f"toy model input must have shape (N, {m}), got {y.shape}")
        if steps is not None and steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        return self._predict(y, steps)


def load_model(folder: Path, manifest: dict[str, Any], device: str | None) -> ToyModel:
    """The toy model in ``folder`` on ``device``, rebuilt in the backend that trained it."""
    module = importlib.import_module(f"deq_toydomain.{manifest['backend']}")
    return ToyModel(manifest, module.load(Path(folder), manifest, device))


def predict(
    model: ToyModel, input: Path, out_dir: Path, steps: int | None = None, reference: Path | None = None
) -> dict[str, Any]:
    """Apply ``model`` to the ``.npy`` of measurements ``input``; write ``predictions.npy``; MSE per row
    against the ``.npy`` of signals ``reference`` when given."""
    if input.suffix != ".npy" or not input.is_file():
        raise ConfigError(f"--input {input}: the toy domain reads one .npy file of measurements (N, m)")
    predictions = model(np.load(input), steps)
    with atomic_path(out_dir / "predictions.npy") as temporary, open(temporary, "wb") as handle:
        np.save(handle, predictions)
    truth = np.load(reference) if reference is not None else None
    if truth is not None and truth.shape != predictions.shape:
        raise ConfigError(f"--reference {reference} has shape {truth.shape}, predictions {predictions.shape}")
    rows = [
        {"index": i, "norm": float(np.linalg.norm(row))}
        | ({} if truth is None else {"mse": float(np.mean((row - truth[i]) ** 2))})
        for i, row in enumerate(predictions)
    ]
    return {"model": model.manifest["name"], "steps": steps, "rows": rows}


domain = Domain(
    name="toy",
    tasks=TASKS,
    default_config=default_config,
    run=run,
    description="toy linear inverse problems (deq-core's test domain)",
    load_model=load_model,
    predict=predict,
)
