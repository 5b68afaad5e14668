"""The ``imaging`` domain of the ``deq`` CLI: tasks ``deblur``, ``ct`` and ``denoise``.

``run`` builds the task's problem (numpy), trains DEQ-HQS/PGD and its same-size explicit twin on the chosen
backend, runs the tuned classical baselines on the same test images, evaluates PSNR/SSIM and the Fourier
Lipschitz recipe per budget, writes ``grid.png`` and every trained model (``models/NAME/``, see
:mod:`deq_imaging.models.files`) and returns the report; ``load_model`` and ``predict`` serve
``deq_core.load_model`` and ``deq predict``, ``pretrained`` finds the shipped models
(``pretrained:imaging/NAME``). No framework is imported here at module level.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.analysis import build_report
from deq_core.domains import Domain, smoke
from deq_core.errors import ConfigError
from deq_imaging.models.config import TASKS, default_config, parse_config
from deq_imaging.pretrained import folder as pretrained_folder


def _grid_columns(problem: Any, result: dict[str, Any], baselines: dict[str, Any], k: int) -> list:
    """clean | degraded (or FBP for CT) | best baseline | explicit | unrolled (if trained) | DEQ at the grid
    budgets and K."""
    degraded = ("FBP", result["direct"]) if problem.task == "ct" else ("degraded", problem.test_y)
    columns = [("clean", problem.test_x), degraded]
    if baselines:
        best = max(baselines, key=lambda name: baselines[name]["value"])
        columns.append((best, baselines[best]["output"]))
    columns.append(("explicit", result["explicit"]["output"]))
    if result["unrolled"]:
        columns.append((f"unrolled K={result['unrolled']['stages']}", result["unrolled"]["output"]))
    for t in sorted(set(result["outputs"]) - {result["iterations"][-1]} | {k}):
        if t in result["outputs"]:
            columns.append((f"DEQ t={t}", result["outputs"][t]))
    return columns


def run(
    task: str, config: dict[str, Any], backend: str, device: str, out_dir: Path, seed: int
) -> dict[str, Any]:
    """Train and evaluate ``task`` on ``backend``; write ``grid.png`` into ``out_dir``; return the report."""
    if task not in TASKS:
        raise ConfigError(f"unknown imaging task {task!r}; valid tasks: {', '.join(TASKS)}")
    from deq_imaging.datasets.problem import make_problem
    from deq_imaging.evaluation import plot_grid
    from deq_imaging.evaluation.classical import run_baselines

    cfg = parse_config(config)
    start = time.perf_counter()
    try:
        problem = make_problem(task, cfg, seed)
    except ValueError as error:  # a folder (--data) or sizes the task cannot use: the CLI's one-line error
        raise ConfigError(str(error)) from None
    seconds = {"data": time.perf_counter() - start}
    from deq_imaging.evaluation.pipeline import train_and_evaluate

    result = train_and_evaluate(problem, cfg, backend, device, seed)
    seconds |= result["seconds"]
    begin = time.perf_counter()
    baselines = run_baselines(problem, smoke(), cfg.bm3d_grid, cfg.bm3d_tune_images) if cfg.baselines else {}
    seconds["baselines"] = time.perf_counter() - begin
    figure = plot_grid(
        _grid_columns(problem, result, baselines, cfg.max_iter),
        Path(out_dir) / "grid.png",
        clean=problem.test_x,
    )
    start_psnr = None
    if problem.task != "ct":
        from deq_imaging.evaluation import psnr

        start_psnr = float(np.mean(psnr(np.clip(problem.test_y, 0, 1), problem.test_x)))
    extra = {
        "ssim": {
            "implicit": result["ssim"],
            "explicit": result["explicit"]["ssim"],
            "baselines": {name: b["ssim"] for name, b in baselines.items()},
        },
        "baseline_weights": {name: b["weight"] for name, b in baselines.items()},
        "baseline_tune_seconds": {name: b["tune_seconds"] for name, b in baselines.items()},
        "degraded_psnr": start_psnr,
        "final_relative_step": result["residual"],
        "training_budget": cfg.max_iter,
        "train": result["train"],
        "learned": result["learned"],
        "unrolled": result["unrolled"] and {k: v for k, v in result["unrolled"].items() if k != "output"},
        "lipschitz_directions": result["directions"],
        "seconds_per_phase": seconds,
        "figures": {"grid": str(figure)},
        "test_images": int(len(problem.test_x)),
    }
    report = build_report(
        domain="imaging",
        task=task,
        backend=backend,
        device=device,
        iterations=result["iterations"],
        metric="psnr",
        higher_is_better=True,
        implicit=result["psnr"],
        explicit=result["explicit"]["psnr"],
        baselines={name: {"value": b["value"], "seconds": b["seconds"]} for name, b in baselines.items()},
        lipschitz=result["lipschitz"],
        params=result["params"],
        seconds=time.perf_counter() - start,
        config=config,
        extra=extra,
    )
    from deq_imaging.models.files import save_models

    save_models(out_dir, task, config, cfg, problem, backend, result)
    return report


def load_model(folder: Path, manifest: dict[str, Any], device: str | None) -> Any:
    """The imaging model in ``folder`` (an :class:`~deq_imaging.models.files.ImagingModel`) on ``device``."""
    from deq_imaging.models import files

    return files.load_model(folder, manifest, device)


def predict(
    model: Any, input: Path, out_dir: Path, steps: int | None = None, reference: Path | None = None
) -> dict[str, Any]:
    """``deq predict``: restore the folder or ``.npy`` of degraded images ``input`` into PNGs in ``out_dir``
    (see :mod:`deq_imaging.evaluation.predict`)."""
    from deq_imaging.evaluation.predict import predict as restore_files

    return restore_files(model, input, out_dir, steps, reference)


domain = Domain(
    name="imaging",
    tasks=TASKS,
    default_config=default_config,
    run=run,
    description="image reconstruction: DEQ-HQS/PGD vs explicit nets and classical baselines",
    load_model=load_model,
    predict=predict,
    pretrained=pretrained_folder,
)
