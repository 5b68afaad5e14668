"""LP models in PyTorch: the contractive DEQ-GNN, a learned weight-tied PDHG as a DEQ, the explicit GNN.

The modules hold the parameters; their arithmetic is :mod:`deq_opt.models.layers`, with message passing
summed by ``index_add_`` on the flattened batch. All models output scaled primal ``x`` (B, n) and dual ``y``
(B, m) predictions (see :mod:`deq_opt.models.graphs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deq_core.config import SolveOptions
from deq_core.errors import ModelFileError
from deq_core.torch import DEQ
from deq_core.torch.analysis import iterate_exactly
from deq_core.torch.train import fit
from deq_core.torch.weights import load_weights, save_weights
from deq_opt.models import layers, training
from deq_opt.models.graphs import CON_FEATURES, VAR_FEATURES, GraphBatch
from deq_opt.models.spec import ModelSpec

__all__ = [
    "DEQGNN",
    "ExplicitGNN",
    "LearnedPDHG",
    "WEIGHTS",
    "build_models",
    "graph_tensors",
    "load",
    "param_count",
    "predict",
    "residual",
    "save",
    "train",
]

Graph = dict[str, torch.Tensor]


def graph_tensors(batch: GraphBatch, device: str | torch.device, dtype: torch.dtype = torch.float32) -> Graph:
    """The batch's arrays as tensors on ``device`` (values in ``dtype``, indices int64)."""
    as_t = lambda dt: lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)  # noqa: E731
    return batch.arrays(as_t(dtype), as_t(torch.int64))


def _dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's parameters (its inputs are cast to it)."""
    return next(model.parameters()).dtype


def _scatter(src: torch.Tensor, dst: torch.Tensor, size: int) -> torch.Tensor:
    """Sum the edge messages ``src`` (B, E, d) into ``size`` nodes per instance at ``dst`` (B, E)."""
    B, E, d = src.shape
    offset = torch.arange(B, device=src.device).unsqueeze(1) * size
    out = src.new_zeros(B * size, d).index_add_(0, (dst + offset).reshape(-1), src.reshape(B * E, d))
    return out.reshape(B, size, d)


def _encoder(features: int, d: int) -> nn.Module:
    return nn.Sequential(nn.Linear(features, d), nn.Tanh(), nn.Linear(d, d))


class _Heads(nn.Module):
    """Linear primal head (also the dynamic variable feature) and a small MLP dual head."""

    def __init__(self, d: int):
        super().__init__()
        self.x = nn.Linear(d, 1)
        self.y = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))

    def primal(self, h: torch.Tensor) -> torch.Tensor:
        """Scaled primal estimate (B, n) from variable states (B, n, d)."""
        return self.x(h).squeeze(-1)

    def dual(self, h: torch.Tensor) -> torch.Tensor:
        """Scaled dual estimate (B, m) from constraint states (B, m, d)."""
        return self.y(h).squeeze(-1)


class GNNCell(nn.Module):
    """The contractive DEQ-GNN block (:func:`deq_opt.models.layers.gnn_cell`) and its parameters."""

    def __init__(self, d: int, gamma: float, heads: _Heads):
        super().__init__()
        self.d, self.gamma = d, gamma
        self.w1 = nn.Parameter(torch.randn(d, d) / d**0.5)
        self.w2 = nn.Parameter(torch.randn(d, d) / d**0.5)
        self.u = nn.Parameter(torch.randn(d) / d**0.5)
        self.u2 = nn.Parameter(torch.randn(d) / d**0.5)
        self.wy = nn.Parameter(torch.randn(d) / d**0.5)
        self.step = nn.Parameter(torch.zeros(2))  # [logit of tau, cost scale a]
        self.heads = heads

    def weights(self) -> dict[str, torch.Tensor]:
        """The capped weights (computed once per solve, passed to :meth:`forward` through its arguments)."""
        tau = torch.sigmoid(self.step[0])
        cell = {"w1": self.w1, "w2": self.w2, "u": self.u, "u2": self.u2, "wy": self.wy}
        capped = layers.gnn_weights(cell, self.heads.x.weight.reshape(self.d), tau, self.gamma)
        return capped | {"tau": tau, "a": self.step[1]}

    def forward(self, z: torch.Tensor, a: dict[str, Any]) -> torch.Tensor:
        """One application of the block to the state ``z = [h_v, h_c]`` (B, (n + m) d)."""
        return layers.gnn_cell(z, a, a["weights"], self.d, self.heads.primal, _scatter)


class PDHGCell(nn.Module):
    """The PDHG-Net-like weight-tied layer (:func:`deq_opt.models.layers.pdhg_cell`) and its parameters.

    Not contractive by construction: solved with damped Picard, its residuals are reported.
    """

    def __init__(self, d: int):
        super().__init__()
        self.d = d
        self.w = nn.Parameter(torch.randn(4, d, d) / d**0.5)

    def weights(self) -> tuple[torch.Tensor, ...]:
        """The four weights capped at spectral norm 1 (computed once per solve)."""
        return tuple(layers.capped(self.w[i], 1.0) for i in range(4))

    def forward(self, z: torch.Tensor, a: dict[str, Any]) -> torch.Tensor:
        """One primal-dual step on ``z = [X, Y]``."""
        return layers.pdhg_cell(z, a, a["weights"], self.d, _scatter)


class _Implicit(nn.Module):
    """Encoders + a DEQ over a cell + readout heads; ``forward(g, budget)`` -> scaled (x, y)."""

    def __init__(self, cell: nn.Module, d: int, n: int, m: int, heads: _Heads, options: SolveOptions):
        super().__init__()
        self.d, self.n, self.m = d, n, m
        self.enc_v, self.enc_c = _encoder(VAR_FEATURES, d), _encoder(CON_FEATURES, d)
        self.heads = heads
        self.deq = DEQ(cell, options)

    def _args(self, g: Graph) -> dict[str, Any]:
        return {
            "ev": self.enc_v(g["var"]),
            "ec": self.enc_c(g["con"]),
            "graph": g,
            "weights": self.deq.cell.weights(),
        }

    def zero_state(self, g: Graph) -> torch.Tensor:
        """The all-zero state of the batch ``g``: where solves and exact-step iterations start."""
        return g["var"].new_zeros(g["var"].shape[0], (self.n + self.m) * self.d)

    def _readout(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hv, hc = layers.split_state(z, self.n, self.d)
        return self.heads.primal(hv), self.heads.dual(hc)

    def solve(
        self, g: Graph, z0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled (x, y) at the equilibrium solved from ``z0`` (zeros when omitted), and the equilibrium."""
        z = self.deq(self._args(g), self.zero_state(g) if z0 is None else z0)[0]
        return (*self._readout(z), z)

    def forward(self, g: Graph, budget: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled (x, y): at the equilibrium (``budget=None``) or after exactly ``budget`` solver steps."""
        if budget is None:
            return self.solve(g)[:2]
        z = iterate_exactly(self.deq.cell, self.zero_state(g), self._args(g), budget, self.deq.options.solver)
        return self._readout(z)

    def residual(self, g: Graph, budget: int) -> torch.Tensor:
        """Per-instance relative residual ``||f(z_t) - z_t|| / ||f(z_t)||`` after ``budget`` steps."""
        args, z0 = self._args(g), self.zero_state(g)
        z = iterate_exactly(self.deq.cell, z0, args, budget, self.deq.options.solver)
        return layers.relative_residual(self.deq.cell(z, args), z)


class DEQGNN(_Implicit):
    """The weight-tied DEQ-GNN: a contractive graph-convolution block iterated to equilibrium."""

    def __init__(self, spec: ModelSpec, n: int, m: int):
        d = spec.gnn_width
        heads = _Heads(d)
        super().__init__(GNNCell(d, spec.gamma, heads), d, n, m, heads, spec.solve_options("gnn"))


class LearnedPDHG(_Implicit):
    """The learned weight-tied PDHG (PDHG-Net-like layer) solved as a DEQ with damped Picard."""

    def __init__(self, spec: ModelSpec, n: int, m: int):
        d = spec.hidden
        super().__init__(PDHGCell(d), d, n, m, _Heads(d), spec.solve_options("pdhg"))


class ExplicitGNN(nn.Module):
    """``depth`` untied blocks of the DEQ-GNN's architecture (no weight caps), from a zero state."""

    def __init__(self, d: int, depth: int):
        super().__init__()
        self.enc_v, self.enc_c = _encoder(VAR_FEATURES, d), _encoder(CON_FEATURES, d)
        self.heads = _Heads(d)
        self.w1 = nn.Parameter(torch.randn(depth, d, d) / d**0.5)
        self.w2 = nn.Parameter(torch.randn(depth, d, d) / d**0.5)
        self.u = nn.Parameter(torch.randn(depth, d) / d**0.5)

    def forward(self, g: Graph, budget: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled (x, y) after all layers (``budget`` is ignored: the depth is fixed)."""
        blocks = zip(self.w1, self.w2, self.u, strict=True)
        heads = self.heads
        hv, hc = layers.explicit_layers(
            self.enc_v(g["var"]), self.enc_c(g["con"]), g, blocks, heads.primal, _scatter
        )
        return heads.primal(hv), heads.dual(hc)


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters())


def build_models(spec: ModelSpec, n: int, m: int) -> dict[str, nn.Module]:
    """``{"pdhg", "gnn", "explicit"}``; the two GNNs are sized to the learned PDHG's parameter count."""
    return {
        "pdhg": LearnedPDHG(spec, n, m),
        "gnn": DEQGNN(spec, n, m),
        "explicit": ExplicitGNN(spec.explicit_width, spec.explicit_layers),
    }


WEIGHTS = "weights.safetensors"


def save(model: nn.Module, path: Path) -> None:
    """Write ``model``'s weights to ``path`` (safetensors)."""
    save_weights(model, path)


def load(model_class: str, spec: ModelSpec, n: int, m: int, path: Path, device: str) -> nn.Module:
    """The ``model_class`` of ``spec`` for ``m`` x ``n`` LPs with the weights of ``path``, on ``device``."""
    if model_class == "ExplicitGNN":
        model = ExplicitGNN(spec.explicit_width, spec.explicit_layers)
    else:
        model = {"LearnedPDHG": LearnedPDHG, "DEQGNN": DEQGNN}[model_class](spec, n, m)
    model.to(device)
    load_weights(model, path, ModelFileError)
    return model.eval()


def train(
    model: nn.Module, data: GraphBatch, x: np.ndarray, y: np.ndarray, run: training.TrainRun, device: str
) -> tuple[nn.Module, float]:
    """``run`` through deq-core's ``fit`` (Adam, cosine schedule, torch-drawn batches): model, last loss."""
    model.to(device)
    dtype = _dtype(model)
    as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    arrays = (graph_tensors(data, device, dtype), as_t(x), as_t(y))
    optimizer = torch.optim.Adam(model.parameters(), lr=run.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, run.config.steps)
    warm = training.warm_cache(model, data.size, isinstance(model, _Implicit), run.warm_start)
    count = min(run.batch, data.size)

    def sample(step: int, generator: torch.Generator) -> Any:
        index = torch.randint(0, data.size, (count,), generator=generator)
        return training.training_batch(arrays, index.to(device), warm)

    loss = training.loss_function(run.dual_weight, warm is not None)
    history = fit(model, optimizer, loss, sample, run.config, scheduler=schedule, warm=warm)
    model.eval()
    return model, history.losses[-1][1]


def predict(
    model: nn.Module, data: GraphBatch, budget: int | None, device: str, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled (x, y) as numpy after exactly ``budget`` iterations (None: the equilibrium / full depth)."""
    with torch.no_grad():
        out = [model(graph_tensors(part, device, _dtype(model)), budget) for part, _ in data.chunks(chunk)]
    return tuple(np.concatenate([o[i].double().cpu().numpy() for o in out]) for i in (0, 1))


def residual(model: nn.Module, data: GraphBatch, budget: int, device: str) -> np.ndarray:
    """Per-instance relative fixed-point residuals after ``budget`` iterations."""
    with torch.no_grad():
        return model.residual(graph_tensors(data, device, _dtype(model)), budget).double().cpu().numpy()
