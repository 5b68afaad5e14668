"""Train the imaging models in PyTorch with deq-core's trainer.

The implicit model follows the warm-started bank recipe (see
:class:`~deq_imaging.models.config.ImagingConfig`): each bank entry keeps its latest iterate, so a visit
continues the iteration instead of solving from scratch: ``warm_iters`` no-grad solver iterations of the
DEQ, then (``jfb``, the default) one differentiable cell application whose output is the loss's
prediction, i.e. the Jacobian-free gradient at the iterate; with the other backward modes the DEQ's own
solve (at most ``max_iter`` iterations) from there is differentiated. Entries restart from the start image
only when the bank replaces their patch, so training sees shallow and deep iterates alike and the learned
map stays stable when it is iterated long after training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deq_core.config import Implicit as ImplicitBackward
from deq_core.torch.train import fit
from deq_core.training import TrainConfig
from deq_imaging.datasets.problem import Problem
from deq_imaging.models.config import ImagingConfig
from deq_imaging.models.torch import Explicit, ImplicitNet, Unrolled
from deq_imaging.models.training.bank import PatchBank


def backward_option(cfg: ImagingConfig) -> Any:
    """The backward mode: ``jfb``/``phantom``/``unroll`` by name, or implicit differentiation whose adjoint
    runs at most ``adjoint_iters`` Picard steps (a truncated Neumann series when it has not converged)."""
    if cfg.backward == "implicit":
        return ImplicitBackward(solver="picard", tol=cfg.tol, max_iter=cfg.adjoint_iters)
    return cfg.backward


def optimizer(model: torch.nn.Module, cfg: ImagingConfig, steps: int) -> tuple[Any, Any]:
    """Adam at ``cfg.lr`` and its schedule over ``steps`` (cosine annealing to zero, or none)."""
    adam = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if cfg.lr_schedule == "constant":
        return adam, None
    return adam, torch.optim.lr_scheduler.CosineAnnealingLR(adam, T_max=steps)


class WarmBank:
    """A :class:`PatchBank` plus each entry's cached iterate (on the device) and its age in iterations."""

    def __init__(self, bank: PatchBank, init: Any, device: str) -> None:
        """Start every entry's iterate at ``init(y)``."""
        self.bank, self.init, self.device = bank, init, device
        self.age = np.zeros(len(bank), dtype=np.int64)
        with torch.no_grad():
            self.z = init(self.tensor(bank.y)).clone()

    def tensor(self, a: np.ndarray) -> torch.Tensor:
        """A float32 tensor copy of ``a`` on the bank's device (never sharing the bank's memory)."""
        return torch.tensor(np.asarray(a), device=self.device)

    def reset(self, index: np.ndarray) -> None:
        """Restart entries ``index`` from the start image."""
        if len(index):
            with torch.no_grad():
                self.z[torch.as_tensor(index, device=self.device)] = self.init(
                    self.tensor(self.bank.y[index])
                )
            self.age[index] = 0

    def store(self, where: torch.Tensor, z: torch.Tensor, iterations: int) -> None:
        """Cache the new iterates of entries ``where``; an entry whose iterate is not finite restarts."""
        self.z[where] = z
        index = where.cpu().numpy()
        self.age[index] += iterations
        self.reset(index[~torch.isfinite(z.flatten(1)).all(1).cpu().numpy()])


def train_implicit(model: ImplicitNet, problem: Problem, cfg: ImagingConfig, device: str, seed: int) -> dict:
    """Fit the DEQ on the warm-started bank; returns the loss history and the iterate ages seen."""
    warm = WarmBank(PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 3), model.deq.cell.init, device)
    ages: list[int] = []

    def sample(step: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng((seed, step))
        if step % cfg.refresh_every == 0:
            warm.reset(warm.bank.refresh(cfg.refresh, rng))
        index = warm.bank.sample(cfg.batch, rng)
        ages.extend(int(a) for a in warm.age[index])
        where = torch.as_tensor(index, device=device)
        return warm.tensor(warm.bank.x[index]), warm.tensor(warm.bank.y[index]), warm.z[where], where

    def loss_fn(net: ImplicitNet, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, y, z0, where = batch
        with torch.no_grad():
            z0, _ = net.deq(y, z0, max_iter=cfg.warm_iters)
        z = net.deq.cell(z0, y) if cfg.backward == "jfb" else net.deq(y, z0)[0]
        warm.store(where, z.detach(), cfg.warm_iters + 1)
        return torch.mean((z - x) ** 2)

    adam, schedule = optimizer(model, cfg, cfg.steps)
    history = fit(
        model,
        adam,
        loss_fn,
        sample,
        TrainConfig(steps=cfg.steps, seed=seed, log_every=max(1, cfg.steps // 20)),
        scheduler=schedule,
    )
    return {"losses": history.losses, "mean_age": float(np.mean(ages)), "max_age": int(np.max(ages))}


def train_explicit(
    model: Explicit | Unrolled, problem: Problem, cfg: ImagingConfig, device: str, seed: int
) -> dict:
    """Fit a model of ``y`` alone (the explicit twin, or the unrolled network) on the same kind of bank
    (fresh patches at the same rate), backpropagating through the whole model."""
    bank = PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 5)

    def sample(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((seed + 1, step))
        if step % cfg.refresh_every == 0:
            bank.refresh(cfg.refresh, rng)
        index = bank.sample(cfg.batch, rng)
        return torch.tensor(bank.x[index], device=device), torch.tensor(bank.y[index], device=device)

    def loss_fn(net: Explicit | Unrolled, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.mean((net(y) - x) ** 2)

    adam, schedule = optimizer(model, cfg, cfg.explicit_steps)
    history = fit(
        model,
        adam,
        loss_fn,
        sample,
        TrainConfig(steps=cfg.explicit_steps, seed=seed + 1, log_every=max(1, cfg.explicit_steps // 20)),
        scheduler=schedule,
    )
    return {"losses": history.losses}
