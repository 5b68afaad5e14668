"""The torch :class:`~deq_pde.evaluation.pipeline.Backend` of a PDE run: tensors on a device, no grad."""

from __future__ import annotations

import contextlib

import torch

from deq_core.torch.analysis import lipschitz_summary, scaling_analysis
from deq_pde.evaluation.pipeline import Backend
from deq_pde.models import torch as models


def backend(device: str) -> Backend:
    """The pipeline's torch side on ``device`` (``"cpu"`` or ``"cuda"``); modules train in place."""

    def build(n, settings, depths):
        implicit = models.FNODEQ(n, settings).to(device)  # first: the draws follow torch's global seed
        return implicit, {depth: models.FNO(n, settings, depth).to(device) for depth in depths}

    def wait(x: torch.Tensor) -> None:
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)

    return Backend(
        on_device=contextlib.nullcontext,
        seed=torch.manual_seed,
        array=lambda x: models.to_tensor(x, device),
        to_numpy=lambda x: x.detach().cpu().numpy(),
        models=build,
        train=lambda model, *args: (model, models.train(model, *args)),
        budget=lambda model: model.budget,
        forward=lambda model: lambda a: model(a),
        predict=lambda model, a, steps=None: models.predict(model, a, steps=steps),
        count_params=models.count_params,
        warmup=lambda a: a[:1],  # one sample warms torch's caches
        wait=wait,
        scaling_analysis=scaling_analysis,
        lipschitz_summary=lipschitz_summary,
    )
