"""The ``opt`` domain plugin for the ``deq`` CLI: LP tasks, their configurations, and the report."""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any

from deq_core.analysis import build_report
from deq_core.config import from_dict
from deq_core.domains import Domain, smoke
from deq_core.errors import ConfigError
from deq_opt.evaluation.pipeline import OptConfig, run_task
from deq_opt.evaluation.predict import predict
from deq_opt.models.files import load_model
from deq_opt.pretrained import folder as pretrained_folder

TASKS = {
    "random-lp": "the research's random LPs: 10 constraints, 50 variables, 100 non-zeros, 30% equalities",
    "pagerank": "PageRank LPs on 100-node Barabasi-Albert graphs (feasibility form)",
    "setcover": "LP relaxations of weighted set cover, 100 elements x 200 sets",
    "auction": "LP relaxations of combinatorial auctions, 50 items x 200 bids",
    "facility": "LP relaxations of capacitated facility location, 20 customers x 10 facilities",
}

_TASK_DATA: dict[str, tuple[str, dict[str, Any]]] = {
    "random-lp": ("random_lp", {}),
    "pagerank": ("pagerank_lp", {"n_nodes": 100}),
    "setcover": ("set_cover_lp", {"n_elements": 100, "n_sets": 200}),
    "auction": ("combinatorial_auction_lp", {"n_items": 50, "n_bids": 200}),
    "facility": ("facility_location_lp", {"n_customers": 20, "n_facilities": 10}),
}


def default_config(task: str, quick: bool) -> dict[str, Any]:
    """Full config (GPU-sized) or ``quick`` (under 10 CPU-minutes); ``DEQ_SMOKE=1`` shrinks to seconds."""
    if task not in TASKS:
        raise ConfigError(f"unknown opt task {task!r}; valid tasks: {', '.join(TASKS)}")
    generator, params = _TASK_DATA[task]
    cfg = OptConfig(generator=generator, params=dict(params))
    if task != "random-lp":
        # larger graphs than random-lp: fewer, smaller minibatches keep the quick run under 10 CPU-minutes;
        # 16 damped steps do not reach these models' fixed points, so training solves start from cached z*
        cfg = dataclasses.replace(
            cfg,
            n_train=1000,
            n_test=200,
            hidden=32,
            steps=300,
            batch=32,
            warm_instances=32,
            warm_start_training=True,
        )
    if task == "pagerank":
        # the warm-start task: twice the steps, and the dual (0 at the optimum of this zero-cost LP) weighted
        # so that the predicted dual does not push PDLP off; warm starts from the learned PDHG at t=4, 16, 64
        cfg = dataclasses.replace(cfg, steps=600, dual_weight=10.0)
    if not quick:
        cfg = dataclasses.replace(cfg, hidden=64, steps=20_000, batch=128, n_test=1000, warm_instances=128)
    if smoke():
        cfg = dataclasses.replace(
            cfg,
            n_train=16,
            n_test=8,
            hidden=8,
            train_iter=2,
            steps=2,
            batch=8,
            budgets=(1, 2, 4),
            warm_budgets=(4,),
            lipschitz_samples=2,
            lipschitz_directions=1,
            warm_instances=2,
            workers=1,
        )
    return dataclasses.asdict(cfg)


def _config(config: dict[str, Any]) -> OptConfig:
    """The typed config (tuples restored from JSON lists); an unknown key is a ConfigError naming it."""
    values = dict(config)
    for key in ("budgets", "warm_budgets", "warm_tolerances"):
        if key in values:
            values[key] = tuple(values[key])
    return from_dict(OptConfig, values)


def run(
    task: str, config: dict[str, Any], backend: str, device: str, out_dir: Path, seed: int
) -> dict[str, Any]:
    """Train the learned PDHG (reported), DEQ-GNN and explicit GNN on ``backend``; return the report."""
    if task not in TASKS:
        raise ConfigError(f"unknown opt task {task!r}; valid tasks: {', '.join(TASKS)}")
    if backend not in ("torch", "jax"):
        raise ConfigError(f"unknown backend {backend!r}; valid backends: torch, jax")
    cfg = _config(config)
    start = time.perf_counter()
    module = importlib.import_module(f"deq_opt.models.{backend}")
    result = run_task(task, cfg, module, device, Path(out_dir), seed)
    return build_report(
        domain="opt",
        task=task,
        backend=backend,
        device=device,
        iterations=result["iterations"],
        metric="relative solution error ||x - x*|| / (||x*|| + 1)",
        higher_is_better=False,
        implicit=result["quality"],
        explicit=result["explicit"],
        baselines=result["baselines"],
        lipschitz=result["lipschitz"],
        params=result["params"],
        seconds=time.perf_counter() - start,
        # the pinned reports predate --data: its default (None) stays out of the report, as it always was
        config={key: value for key, value in config.items() if key != "data" or value is not None},
        extra=result["extra"],
    )


domain = Domain(
    name="opt",
    tasks=TASKS,
    default_config=default_config,
    run=run,
    description="linear programs: learned PDHG, DEQ-GNN, explicit GNN, OR-Tools baselines, PDLP warm starts",
    load_model=load_model,
    predict=predict,
    pretrained=pretrained_folder,
)
