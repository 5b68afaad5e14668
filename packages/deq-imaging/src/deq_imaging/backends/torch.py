"""The torch adapter of the imaging pipeline (the :class:`~deq_imaging.backends.Backend` protocol)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from deq_core.torch import analysis
from deq_core.torch.train import fit
from deq_core.training import History
from deq_imaging.backends import TrainingRun
from deq_imaging.models import torch as models


class Adapter:
    """torch on ``device`` in ``dtype``: eager (no compilation), ``torch.no_grad``, global-RNG seeding."""

    name = "torch"
    models = models
    stores_prediction = True

    def __init__(self, device: str = "cpu", dtype: str = "float32") -> None:
        """Compute on ``device`` (``cpu``, ``cuda``, ...) in ``dtype`` (``float32`` or ``float64``)."""
        self.device, self.dtype = device, getattr(torch, dtype)

    def array(self, a: np.ndarray) -> torch.Tensor:
        """A tensor copy of ``a`` (never sharing numpy's memory)."""
        return torch.tensor(np.asarray(a), dtype=self.dtype, device=self.device)

    def numpy(self, a: torch.Tensor) -> np.ndarray:
        """A numpy copy of ``a``."""
        return a.detach().cpu().numpy()

    def no_grad(self) -> contextlib.AbstractContextManager:
        """``torch.no_grad()``."""
        return torch.no_grad()

    def stop_gradient(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` under ``torch.no_grad()``."""
        with torch.no_grad():
            return fn()

    def jit(self, fn: Callable) -> Callable:
        """``fn`` itself (torch runs eagerly)."""
        return fn

    def scope(self) -> contextlib.AbstractContextManager:
        """No scope: tensors carry their device."""
        return contextlib.nullcontext()

    def cells(self, spec: Any, cfg: Any, seed: int, count: int, stream: int = 0) -> list[Any]:
        """``count`` cells built in turn after ``torch.manual_seed(seed + stream)`` (the global RNG kept)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + stream)
            return [models.build_cell(spec, cfg) for _ in range(count)]

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` moved to the device and dtype."""
        return model.to(device=self.device, dtype=self.dtype)

    def inference(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in eval mode."""
        return model.eval()

    def start(self, cell: Any, y: torch.Tensor) -> torch.Tensor:
        """``cell.init(y)``."""
        return cell.init(y)

    def step(self, cell: Any, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``cell(z, y)``."""
        return cell(z, y)

    def fit(self, run: TrainingRun) -> tuple[torch.nn.Module, History]:
        """deq-core's torch ``fit`` (in place) with Adam and ``CosineAnnealingLR`` (or a constant rate)."""
        adam = torch.optim.Adam(run.model.parameters(), lr=run.lr)
        schedule = None
        if run.schedule != "constant":
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(adam, T_max=run.config.steps)
        history = fit(
            run.model, adam, run.loss_fn, run.batches, run.config, scheduler=schedule, warm=run.warm
        )
        return run.model, history

    lipschitz_summary = staticmethod(analysis.lipschitz_summary)
    local_lipschitz = staticmethod(analysis.local_lipschitz)
    count_parameters = staticmethod(models.count_parameters)
