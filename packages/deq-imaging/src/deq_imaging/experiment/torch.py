"""Train and evaluate the imaging models in PyTorch with deq-core's trainer and scaling analysis.

Training of the implicit model follows the warm-started bank recipe (see
:class:`~deq_imaging.experiment.ImagingConfig`): each bank entry keeps its latest iterate, so a visit
continues the iteration instead of solving from scratch; an entry whose iterate has accumulated ``max_iter``
(K) iterations restarts from the start image, so no training iterate is older than the training budget K.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from deq_core.config import Implicit as ImplicitBackward
from deq_core.torch.analysis import lipschitz_summary
from deq_core.torch.train import fit
from deq_core.training import TrainConfig
from deq_imaging.evaluation import fourier_directions, psnr, ssim
from deq_imaging.experiment.bank import PatchBank
from deq_imaging.experiment.config import ImagingConfig
from deq_imaging.experiment.problem import Problem
from deq_imaging.models.torch import Explicit, Implicit, build_cell, count_parameters


def backward_option(cfg: ImagingConfig) -> Any:
    """The backward mode: implicit differentiation whose adjoint ``y = g + J^T y`` runs at most
    ``adjoint_iters`` Picard steps (a truncated Neumann series when it has not converged), or a name."""
    if cfg.backward == "implicit":
        return ImplicitBackward(solver="picard", tol=cfg.tol, max_iter=cfg.adjoint_iters)
    return cfg.backward


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
                self.z[torch.as_tensor(index)] = self.init(self.tensor(self.bank.y[index]))
            self.age[index] = 0


def train_implicit(model: Implicit, problem: Problem, cfg: ImagingConfig, device: str, seed: int) -> dict:
    """Fit the DEQ on the warm-started bank; returns the loss history and the ages seen."""
    cell = model.deq.cell
    warm = WarmBank(PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 3), cell.init, device)
    per_visit = cfg.warm_iters + cfg.train_iters
    ages: list[int] = []

    def sample(step: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng((seed, step))
        warm.reset(warm.bank.refresh(cfg.refresh, rng))
        index = warm.bank.sample(cfg.batch, rng)
        warm.reset(index[warm.age[index] + per_visit > cfg.max_iter])
        ages.extend(int(a) for a in warm.age[index])
        x, y = warm.tensor(warm.bank.x[index]), warm.tensor(warm.bank.y[index])
        z = warm.z[torch.as_tensor(index)]
        with torch.no_grad():
            for _ in range(cfg.warm_iters):
                z = cell(z, y)
        warm.z[torch.as_tensor(index)] = z
        warm.age[index] += per_visit
        return x, y, z

    def loss_fn(net: Implicit, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, y, z0 = batch
        z, _ = net.deq(y, z0, max_iter=cfg.train_iters)
        return torch.mean((z - x) ** 2)

    history = fit(
        model,
        torch.optim.Adam(model.parameters(), lr=cfg.lr),
        loss_fn,
        sample,
        TrainConfig(steps=cfg.steps, seed=seed, log_every=max(1, cfg.steps // 20)),
    )
    return {"losses": history.losses, "mean_age": float(np.mean(ages)), "max_age": int(np.max(ages))}


def train_explicit(model: Explicit, problem: Problem, cfg: ImagingConfig, device: str, seed: int) -> dict:
    """Fit the one-shot model on the same kind of bank (fresh patches at the same rate)."""
    bank = PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 5)

    def sample(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((seed + 1, step))
        bank.refresh(cfg.refresh, rng)
        index = bank.sample(cfg.batch, rng)
        as_tensor = lambda a: torch.as_tensor(np.ascontiguousarray(a), device=device)  # noqa: E731
        return as_tensor(bank.x[index]), as_tensor(bank.y[index])

    def loss_fn(net: Explicit, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.mean((net(y) - x) ** 2)

    history = fit(
        model,
        torch.optim.Adam(model.parameters(), lr=cfg.lr),
        loss_fn,
        sample,
        TrainConfig(steps=cfg.explicit_steps, seed=seed + 1, log_every=max(1, cfg.explicit_steps // 20)),
    )
    return {"losses": history.losses}


def _scores(output: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    output = np.clip(output, 0.0, 1.0)
    return float(np.mean(psnr(output, clean))), float(np.mean(ssim(output, clean)))


def per_budget(
    model: Implicit, y: torch.Tensor, clean: np.ndarray, budgets: list[int], keep: set[int]
) -> dict:
    """PSNR/SSIM of ``y_t`` for every budget (one pass for Picard), the outputs at ``keep`` and the final
    relative step ``||z_T - z_{T-1}|| / ||z_T||``."""
    cell = model.deq.cell
    picard = type(model.deq.options.solver).__name__ == "Picard"
    quality, similarity, outputs = [], [], {}
    with torch.no_grad():
        z, previous, done = cell.init(y), None, 0
        for t in budgets:
            if picard:
                for _ in range(t - done):
                    previous, z = z, cell(z, y)
            else:
                previous, z = model.budget(y, t - 1) if t > 1 else cell.init(y), model.budget(y, t)
            done = t
            out = z.detach().cpu().numpy()
            q, s = _scores(out, clean)
            quality.append(q)
            similarity.append(s)
            if t in keep:
                outputs[t] = out
        step = torch.linalg.vector_norm((z - previous).flatten(1), dim=1)
        residual = float((step / torch.linalg.vector_norm(z.flatten(1), dim=1).clamp_min(1e-12)).max())
    return {"psnr": quality, "ssim": similarity, "outputs": outputs, "residual": residual}


def train_and_evaluate(problem: Problem, cfg: ImagingConfig, device: str, seed: int) -> dict[str, Any]:
    """Train both models, then measure quality and Lipschitz estimates per budget on the test set."""
    torch.manual_seed(seed)
    seconds: dict[str, float] = {}
    solve = {"solver": cfg.solver, "backward": backward_option(cfg), "tol": cfg.tol, "max_iter": cfg.max_iter}
    implicit = Implicit(build_cell(problem.spec, cfg), **solve).to(device)
    explicit = Explicit(build_cell(problem.spec, cfg)).to(device)

    start = time.perf_counter()
    train_log = {"implicit": train_implicit(implicit, problem, cfg, device, seed)}
    seconds["train_implicit"] = time.perf_counter() - start
    start = time.perf_counter()
    train_log["explicit"] = train_explicit(explicit, problem, cfg, device, seed)
    seconds["train_explicit"] = time.perf_counter() - start
    implicit.eval()
    explicit.eval()

    start = time.perf_counter()
    test_y = torch.as_tensor(problem.test_y, device=device)
    budgets = list(cfg.budgets)
    keep = {*cfg.grid_budgets, cfg.max_iter, budgets[-1]}
    curve = per_budget(implicit, test_y, problem.test_x, budgets, keep)
    with torch.no_grad():
        explicit_out = explicit(test_y).cpu().numpy()
        start_images = implicit.deq.cell.init(test_y).cpu().numpy()
    explicit_psnr, explicit_ssim = _scores(explicit_out, problem.test_x)
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    reference = problem.spec.reference(problem.test_x.shape[2:])
    gains = reference.geometry.otf if problem.spec.kind == "blur" else None
    directions, direction_info = fourier_directions(
        reference, problem.test_x.shape[1], cfg.percentiles, gains
    )
    directions = torch.as_tensor(directions, device=device)
    y_lip = test_y[: cfg.lipschitz_samples]
    lipschitz: dict[str, list[float]] = {"max": [], "mean": []} | ({"local": []} if cfg.power_iters else {})
    for t in budgets:
        summary = lipschitz_summary(
            lambda a, t=t: implicit.budget(a, t), y_lip, directions, cfg.scales, cfg.power_iters, seed
        )
        for key in lipschitz:
            lipschitz[key].append(summary[key])
    lipschitz["explicit"] = lipschitz_summary(explicit, y_lip, directions, cfg.scales, cfg.power_iters, seed)
    seconds["lipschitz"] = time.perf_counter() - start

    cell = implicit.deq.cell
    with torch.no_grad():
        learned = {"sigma": float(cell.sigma())}
        step = ("mu", cell.log_mu) if hasattr(cell, "log_mu") else ("eta", cell.log_eta)
        learned[step[0]] = float(step[1].exp())
    return {
        "iterations": budgets,
        "psnr": curve["psnr"],
        "ssim": curve["ssim"],
        "residual": curve["residual"],
        "outputs": curve["outputs"],
        "start_images": start_images,
        "explicit": {"psnr": explicit_psnr, "ssim": explicit_ssim, "output": explicit_out},
        "lipschitz": lipschitz,
        "directions": direction_info,
        "params": {"implicit": count_parameters(implicit), "explicit": count_parameters(explicit)},
        "train": train_log,
        "learned": learned,
        "seconds": seconds,
    }
