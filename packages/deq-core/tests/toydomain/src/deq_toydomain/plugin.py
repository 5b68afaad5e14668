"""The ``toy`` domain plugin: configuration, dispatch to a backend, and the report."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deq_core.analysis import build_report, geometric_budgets
from deq_core.domains import Domain, smoke
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
    start = time.perf_counter()
    problem = make_problem(task, cfg.n, cfg.m, cfg.n_train, cfg.n_test, cfg.noise, seed)
    if backend == "torch":
        from deq_toydomain.torch import train_and_analyse
    elif backend == "jax":
        from deq_toydomain.jax import train_and_analyse
    else:
        raise ValueError(f"unknown backend {backend!r}; valid backends: torch, jax")
    result = train_and_analyse(problem, cfg, device, seed)
    return build_report(
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


domain = Domain(
    name="toy",
    tasks=TASKS,
    default_config=default_config,
    run=run,
    description="toy linear inverse problems (deq-core's test domain)",
)
