"""PyTorch side of a PDE run: train FNO-DEQ and explicit FNOs, then quality, Lipschitz and time per budget."""

from __future__ import annotations

import time
from typing import Any

import torch

from deq_core.torch.analysis import lipschitz_summary, scaling_analysis
from deq_pde.evaluation.perturbations import sine_directions
from deq_pde.evaluation.protocol import RunSettings, Split
from deq_pde.models.torch import FNO, FNODEQ, count_params, predict, relative_l2, to_tensor, train


def _mean_error(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(relative_l2(pred, target).mean())


def _seconds_per_sample(fn, inputs: torch.Tensor) -> float:
    """Wall time of ``fn(inputs)`` per sample (after one warm-up call), synchronising on CUDA."""
    fn(inputs[:1])
    if inputs.device.type == "cuda":
        torch.cuda.synchronize(inputs.device)
    start = time.perf_counter()
    fn(inputs)
    if inputs.device.type == "cuda":
        torch.cuda.synchronize(inputs.device)
    return (time.perf_counter() - start) / inputs.shape[0]


def run_models(split: Split, settings: RunSettings, device: str, seed: int) -> dict[str, Any]:
    """Train the implicit and explicit models on ``split`` and analyse them (see :class:`RunSettings`)."""
    torch.manual_seed(seed)
    n = split.train_inputs.shape[-1]
    a_train, u_train = to_tensor(split.train_inputs, device), to_tensor(split.train_targets, device)
    a_test, u_test = to_tensor(split.test_inputs, device), to_tensor(split.test_targets, device)
    implicit = FNODEQ(n, settings.model).to(device)
    explicit = {depth: FNO(n, settings.model, depth).to(device) for depth in settings.explicit_depths}
    losses = {"implicit": train(implicit, a_train, u_train, settings.train, seed, "train FNO-DEQ")}
    for depth, model in explicit.items():
        losses[f"fno{depth}"] = train(
            model, a_train, u_train, settings.train, seed, f"train FNO depth {depth}"
        )

    directions = to_tensor(sine_directions(n, settings.sine_modes), device)
    scaling = scaling_analysis(
        implicit.budget,
        a_test,
        u_test,
        settings.budgets,
        _mean_error,
        directions,
        settings.scales,
        lipschitz_samples=settings.lipschitz_samples,
        power_iters=settings.power_iters,
        seed=seed,
    )
    timing = a_test[: settings.timing_samples]
    seconds = [
        _seconds_per_sample(lambda a, t=t: predict(implicit, a, steps=t), timing) for t in settings.budgets
    ]
    shallow = explicit[1]
    explicit_lipschitz = lipschitz_summary(
        lambda a: shallow(a),
        a_test[: settings.lipschitz_samples],
        directions,
        settings.scales,
        settings.power_iters,
        seed,
    )
    shown = a_test[: settings.figure_samples]
    return {
        "scaling": scaling,
        "seconds_per_budget": seconds,
        "explicit": {
            depth: {
                "error": _mean_error(predict(model, a_test), u_test),
                "seconds": _seconds_per_sample(lambda a, m=model: predict(m, a), timing),
                "params": count_params(model),
            }
            for depth, model in explicit.items()
        },
        "explicit_lipschitz": explicit_lipschitz,
        "params": count_params(implicit),
        "train_loss": losses,
        "figure": predict(implicit, shown, steps=max(settings.budgets)).double().cpu().numpy(),
    }
