"""The toy domain in PyTorch: a DEQ with a small MLP cell, an explicit MLP of the same size, the analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deq_core.errors import ModelFileError
from deq_core.torch import DEQ
from deq_core.torch.analysis import deq_iterate_exactly, lipschitz_summary, scaling_analysis
from deq_core.torch.weights import load_weights, save_weights
from deq_toydomain.problem import Problem


class Cell(nn.Module):
    """``z <- W2 tanh(W1 [z, u] + b1) + b2``."""

    def __init__(self, n: int, hidden: int):
        super().__init__()
        self.inner = nn.Linear(2 * n, hidden)
        self.outer = nn.Linear(hidden, n)

    def forward(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One application of the cell."""
        return self.outer(torch.tanh(self.inner(torch.cat([z, u], dim=1))))


class Implicit(nn.Module):
    """Measurements -> learned lift ``u = L y`` -> fixed point of :class:`Cell`."""

    def __init__(self, n: int, m: int, hidden: int, **solve_options: Any):
        super().__init__()
        self.lift = nn.Linear(m, n, bias=False)
        self.deq = DEQ(Cell(n, hidden), **solve_options)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """The equilibrium output (training and reference use)."""
        return self.deq(self.lift(y))[0]

    def budget(self, y: torch.Tensor, steps: int) -> torch.Tensor:
        """The output after exactly ``steps`` solver iterations from zero."""
        return deq_iterate_exactly(self.deq, self.lift(y), steps)


def explicit_width(n: int, m: int, budget: int) -> int:
    """The largest width whose explicit MLP has at most ``budget`` parameters (at least 1)."""
    count = lambda h: (m + 1) * h + (h + 1) * h + (h + 1) * n
    return max(h for h in range(1, 4 * budget) if count(h) <= budget or h == 1)


def explicit_model(n: int, m: int, width: int) -> nn.Module:
    """A two-hidden-layer tanh MLP of ``width``."""
    return nn.Sequential(
        nn.Linear(m, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, n)
    )


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: Any, seed: int) -> float:
    """Adam on the mean squared error; returns the last minibatch loss."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss = torch.zeros((), device=x.device)
    for _ in range(cfg.train_steps):
        index = torch.randint(0, x.shape[0], (cfg.batch,), generator=generator, device=x.device)
        loss = torch.mean((model(y[index]) - x[index]) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def train_and_analyse(problem: Problem, cfg: Any, device: str, seed: int) -> dict[str, Any]:
    """Train both models and measure quality and Lipschitz estimates on the test set."""
    torch.manual_seed(seed)
    tensor = lambda a: torch.as_tensor(a, device=device)
    train_x, train_y = tensor(problem.train_x), tensor(problem.train_y)
    test_x, test_y = tensor(problem.test_x), tensor(problem.test_y)
    implicit = Implicit(cfg.n, cfg.m, cfg.hidden, solver=cfg.solver, tol=cfg.tol, max_iter=cfg.max_iter).to(
        device
    )
    width = explicit_width(cfg.n, cfg.m, _params(implicit))
    explicit = explicit_model(cfg.n, cfg.m, width).to(device)
    losses = {
        "implicit": _train(implicit, train_x, train_y, cfg, seed),
        "explicit": _train(explicit, train_x, train_y, cfg, seed),
    }
    implicit.eval()
    explicit.eval()
    directions = torch.randn(cfg.directions, cfg.m, generator=torch.Generator().manual_seed(seed + 1))
    mse = lambda prediction, target: float(torch.mean((prediction - target) ** 2))
    scaling = scaling_analysis(
        implicit.budget,
        test_y,
        test_x,
        cfg.budgets,
        mse,
        directions.to(device),
        cfg.scales,
        lipschitz_samples=cfg.lipschitz_samples,
        power_iters=cfg.power_iters,
        seed=seed,
    )
    with torch.no_grad():
        explicit_quality = mse(explicit(test_y), test_x)
    explicit_lipschitz = lipschitz_summary(
        explicit, test_y[: cfg.lipschitz_samples], directions.to(device), cfg.scales, cfg.power_iters, seed
    )
    return {
        "scaling": scaling,
        "explicit_quality": explicit_quality,
        "explicit_lipschitz": explicit_lipschitz,
        "params": {"implicit": _params(implicit), "explicit": _params(explicit)},
        "train_loss": losses,
        "models": {"implicit": implicit, "explicit": explicit},
        "model_config": {"implicit": {}, "explicit": {"width": width}},
    }


WEIGHTS = "weights.safetensors"


def weight_writer(model: nn.Module):
    """``write_files`` for :func:`deq_core.model_files.write_model`: the weights as safetensors."""

    def write(folder: Path) -> list[str]:
        save_weights(model, folder / WEIGHTS)
        return [WEIGHTS]

    return write


def load(folder: Path, manifest: dict[str, Any], device: str | None):
    """The predictor ``(y, steps) -> x`` (numpy in and out) of the model folder ``folder``."""
    cfg, name = manifest["config"], manifest["name"]
    if name == "implicit":
        solve = {key: cfg[key] for key in ("solver", "tol", "max_iter")}
        model = Implicit(cfg["n"], cfg["m"], cfg["hidden"], **solve)
    else:
        model = explicit_model(cfg["n"], cfg["m"], cfg["width"])
    model = model.to(device or "cpu")
    load_weights(model, folder / WEIGHTS, ModelFileError)
    model.eval()

    def predict(y: np.ndarray, steps: int | None) -> np.ndarray:
        with torch.no_grad():
            batch = torch.as_tensor(y, dtype=torch.float32, device=device or "cpu")
            out = model.budget(batch, steps) if steps is not None and name == "implicit" else model(batch)
        return out.cpu().numpy()

    return predict
