"""LP models in PyTorch: the contractive DEQ-GNN, a learned weight-tied PDHG as a DEQ, the explicit GNN.

Message passing over the padded bipartite graph is a gather plus ``index_add_`` on the flattened batch, so
every operation stays on the input's device. All models output scaled primal ``x`` (B, n) and dual ``y``
(B, m) predictions (see :mod:`deq_opt.models.graphs`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deq_core.torch import DEQ
from deq_core.torch.analysis import iterate
from deq_opt.models.graphs import CON_FEATURES, VAR_FEATURES, GraphBatch
from deq_opt.models.spec import ModelSpec

__all__ = [
    "DEQGNN",
    "ExplicitGNN",
    "LearnedPDHG",
    "build_models",
    "graph_tensors",
    "param_count",
    "predict",
    "residual",
    "train",
]

Graph = dict[str, torch.Tensor]


def graph_tensors(batch: GraphBatch, device: str | torch.device) -> Graph:
    """The batch's arrays as tensors on ``device`` (float32 / int64)."""
    as_t = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)  # noqa: E731
    return {
        "var": as_t(batch.var, torch.float32),
        "con": as_t(batch.con, torch.float32),
        "bounds": as_t(batch.bounds, torch.float32),
        "rows": as_t(batch.rows, torch.int64),
        "cols": as_t(batch.cols, torch.int64),
        "vals": as_t(batch.vals, torch.float32),
    }


def _spmm(g: Graph, h: torch.Tensor, transpose: bool) -> torch.Tensor:
    """``A^ h`` (B, m, d) from (B, n, d), or ``A^T h`` with ``transpose``, by gather + index_add."""
    src_idx, dst_idx = (g["rows"], g["cols"]) if transpose else (g["cols"], g["rows"])
    size = g["var"].shape[1] if transpose else g["con"].shape[1]
    B, E = src_idx.shape
    d = h.shape[-1]
    src = torch.gather(h, 1, src_idx.unsqueeze(-1).expand(B, E, d)) * g["vals"].unsqueeze(-1)
    offset = torch.arange(B, device=h.device).unsqueeze(1) * size
    out = h.new_zeros(B * size, d).index_add_(0, (dst_idx + offset).reshape(-1), src.reshape(B * E, d))
    return out.reshape(B, size, d)


def _capped(w: torch.Tensor, cap: float) -> torch.Tensor:
    """``w`` rescaled so that its spectral norm is at most ``cap``."""
    return w * torch.clamp(cap / (torch.linalg.matrix_norm(w, 2) + 1e-12), max=1.0)


def _shared(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Batch-shared weights with a leading axis of 1 for a cell's ``args``.

    deq-core evaluates a cell on its unconverged samples only and indexes every ``args`` tensor whose leading
    dimension equals the batch size; a (d, d) weight would be mistaken for per-sample data when d == batch.
    """
    return {name: w.unsqueeze(0) for name, w in weights.items()}


def _encoder(features: int, d: int) -> nn.Module:
    return nn.Sequential(nn.Linear(features, d), nn.Tanh(), nn.Linear(d, d))


def _violation(ax: torch.Tensor, g: Graph) -> torch.Tensor:
    """Row-bound violation of the activities ``ax`` (B, m) in the same units (1-Lipschitz in ``ax``)."""
    has_lo, has_hi = g["con"][..., 1], g["con"][..., 3]
    lo, hi = g["bounds"][..., 0], g["bounds"][..., 1]
    return has_lo * torch.relu(lo - ax) - has_hi * torch.relu(ax - hi)


class _Heads(nn.Module):
    """Linear primal head (also the dynamic variable feature) and a small MLP dual head."""

    def __init__(self, d: int):
        super().__init__()
        self.x = nn.Linear(d, 1)
        self.y = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))


def _box_step(x: torch.Tensor, step: torch.Tensor, g: Graph) -> torch.Tensor:
    """``clip(x - step, lo, hi) - x`` within the scaled variable bounds of ``g`` (1-Lipschitz in each)."""
    has_lo, has_hi = g["var"][..., 2], g["var"][..., 4]
    lo, hi = g["var"][..., 1], g["var"][..., 3]
    moved = x - step
    moved = torch.where(has_lo > 0, torch.maximum(moved, lo), moved)
    moved = torch.where(has_hi > 0, torch.minimum(moved, hi), moved)
    return moved - x


class GNNCell(nn.Module):
    """One PDHG-like block on hidden node states with dynamic primal and dual features.

    ``x^ = h_v w_x``; ``h_c <- tanh(e_c + A^(h_v W1) + viol(A^ x^) u)`` (the dual step's primal residual);
    ``y^ = h_c w_y``; ``h_v <- tanh(e_v + A^T(h_c W2) + s u2)`` with the projected primal step
    ``s = clip(x^ - tau (a c - A^T y^), lo, hi) - x^``. Weights are capped so that ``h_c`` and then ``h_v``
    are ``gamma``-Lipschitz in the previous ``h_v``: a contraction by construction.
    """

    def __init__(self, d: int, n: int, m: int, gamma: float, heads: _Heads):
        super().__init__()
        self.d, self.n, self.m, self.gamma = d, n, m, gamma
        self.w1 = nn.Parameter(torch.randn(d, d) / d**0.5)
        self.w2 = nn.Parameter(torch.randn(d, d) / d**0.5)
        self.u = nn.Parameter(torch.randn(d) / d**0.5)
        self.u2 = nn.Parameter(torch.randn(d) / d**0.5)
        self.wy = nn.Parameter(torch.randn(d) / d**0.5)
        self.step = nn.Parameter(torch.zeros(2))  # [logit of tau, cost scale a]
        self.heads = heads

    def weights(self) -> dict[str, torch.Tensor]:
        """The capped weights (computed once per solve, passed to :meth:`forward` through its arguments).

        Each has a leading axis of 1 (see :func:`_shared`).
        """
        gamma, norm = self.gamma, torch.linalg.norm
        wx = self.heads.x.weight.reshape(self.d)
        tau = torch.sigmoid(self.step[0])
        bound1 = torch.linalg.matrix_norm(self.w1, 2) + norm(wx) * norm(self.u)
        k1 = torch.clamp(gamma / (bound1 + 1e-12), max=1.0)
        step_lip = norm(wx) + tau * norm(self.wy) * gamma
        bound2 = torch.linalg.matrix_norm(self.w2, 2) * gamma + norm(self.u2) * step_lip
        k2 = torch.clamp(gamma / (bound2 + 1e-12), max=1.0)
        return _shared(
            {
                "w1": k1 * self.w1,
                "u": k1 * self.u,
                "w2": k2 * self.w2,
                "u2": k2 * self.u2,
                "wy": self.wy,
                "tau": tau.reshape(1),
                "a": self.step[1:],
            }
        )

    def forward(self, z: torch.Tensor, a: dict[str, Any]) -> torch.Tensor:
        """One application of the block to the state ``z = [h_v, h_c]`` (B, (n + m) d)."""
        B, d, n = z.shape[0], self.d, self.n
        hv = z[:, : n * d].reshape(B, n, d)
        g, w = a["graph"], {k: v[0] for k, v in a["weights"].items()}
        xhat = self.heads.x(hv).squeeze(-1)
        viol = _violation(_spmm(g, xhat.unsqueeze(-1), False).squeeze(-1), g)
        hc = torch.tanh(a["ec"] + _spmm(g, hv @ w["w1"], False) + viol.unsqueeze(-1) * w["u"])
        yhat = hc @ w["wy"]
        grad = w["a"] * g["var"][..., 0] - _spmm(g, yhat.unsqueeze(-1), True).squeeze(-1)
        s = _box_step(xhat, w["tau"] * grad, g)
        hv = torch.tanh(a["ev"] + _spmm(g, hc @ w["w2"], True) + s.unsqueeze(-1) * w["u2"])
        return torch.cat([hv.reshape(B, -1), hc.reshape(B, -1)], dim=1)


class PDHGCell(nn.Module):
    """A PDHG-Net-like weight-tied layer on channel-expanded iterates ``X`` (B, n, d) and ``Y`` (B, m, d).

    ``X' = tanh(X Wx + A^T(Y Wxy) - e_v)``, ``Y' = tanh(Y Wy - A^((2X' - X) Wyx) + e_c)`` (spectral
    norms <= 1); not contractive by construction: solved with damped Picard, its residuals are reported.
    """

    def __init__(self, d: int, n: int, m: int):
        super().__init__()
        self.d, self.n = d, n
        self.w = nn.Parameter(torch.randn(4, d, d) / d**0.5)

    def weights(self) -> dict[str, torch.Tensor]:
        """The four weights capped at spectral norm 1 (computed once per solve; see :func:`_shared`)."""
        return _shared({name: _capped(self.w[i], 1.0) for i, name in enumerate(("x", "xy", "y", "yx"))})

    def forward(self, z: torch.Tensor, a: dict[str, Any]) -> torch.Tensor:
        """One primal-dual step on ``z = [X, Y]``."""
        B, d, n = z.shape[0], self.d, self.n
        X, Y = z[:, : n * d].reshape(B, n, d), z[:, n * d :].reshape(B, -1, d)
        wx, wxy, wy, wyx = (a["weights"][k][0] for k in ("x", "xy", "y", "yx"))
        g = a["graph"]
        Xn = torch.tanh(X @ wx + _spmm(g, Y @ wxy, True) - a["ev"])
        Yn = torch.tanh(Y @ wy - _spmm(g, (2 * Xn - X) @ wyx, False) + a["ec"])
        return torch.cat([Xn.reshape(B, -1), Yn.reshape(B, -1)], dim=1)


class _Implicit(nn.Module):
    """Encoders + a DEQ over a cell + readout heads; ``forward(g, budget)`` -> scaled (x, y)."""

    def __init__(self, cell: nn.Module, d: int, n: int, m: int, heads: _Heads, **solve: Any):
        super().__init__()
        self.d, self.n, self.m = d, n, m
        self.enc_v, self.enc_c = _encoder(VAR_FEATURES, d), _encoder(CON_FEATURES, d)
        self.heads = heads
        self.deq = DEQ(cell, **solve)

    def _args(self, g: Graph) -> dict[str, Any]:
        return {
            "ev": self.enc_v(g["var"]),
            "ec": self.enc_c(g["con"]),
            "graph": g,
            "weights": self.deq.cell.weights(),
        }

    def _z0(self, g: Graph) -> torch.Tensor:
        B = g["var"].shape[0]
        return g["var"].new_zeros(B, (self.n + self.m) * self.d)

    def _readout(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, n, d = z.shape[0], self.n, self.d
        hv, hc = z[:, : n * d].reshape(B, n, d), z[:, n * d :].reshape(B, self.m, d)
        return self.heads.x(hv).squeeze(-1), self.heads.y(hc).squeeze(-1)

    def solve(
        self, g: Graph, z0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled (x, y) at the equilibrium solved from ``z0`` (zeros when omitted), and the equilibrium."""
        z = self.deq(self._args(g), self._z0(g) if z0 is None else z0)[0]
        return (*self._readout(z), z)

    def forward(self, g: Graph, budget: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled (x, y): at the equilibrium (``budget=None``) or after exactly ``budget`` solver steps."""
        if budget is None:
            return self.solve(g)[:2]
        z = iterate(self.deq.cell, self._z0(g), self._args(g), budget, self.deq.options.solver)
        return self._readout(z)

    def residual(self, g: Graph, budget: int) -> torch.Tensor:
        """Per-instance relative residual ``||f(z_t) - z_t|| / ||f(z_t)||`` after ``budget`` steps."""
        args, z0 = self._args(g), self._z0(g)
        z = iterate(self.deq.cell, z0, args, budget, self.deq.options.solver)
        fz = self.deq.cell(z, args)
        return torch.linalg.vector_norm(fz - z, dim=1) / torch.linalg.vector_norm(fz, dim=1).clamp_min(1e-12)


class DEQGNN(_Implicit):
    """The weight-tied DEQ-GNN: a contractive graph-convolution block iterated to equilibrium."""

    def __init__(self, spec: ModelSpec, n: int, m: int):
        d = spec.gnn_width
        heads = _Heads(d)
        super().__init__(GNNCell(d, n, m, spec.gamma, heads), d, n, m, heads, **spec.solve_options("gnn"))


class LearnedPDHG(_Implicit):
    """The learned weight-tied PDHG (PDHG-Net-like layer) solved as a DEQ with damped Picard."""

    def __init__(self, spec: ModelSpec, n: int, m: int):
        d = spec.hidden
        super().__init__(PDHGCell(d, n, m), d, n, m, _Heads(d), **spec.solve_options("pdhg"))


class ExplicitGNN(nn.Module):
    """``layers`` untied blocks of the DEQ-GNN's architecture (no weight caps), from a zero state."""

    def __init__(self, d: int, layers: int, n: int, m: int):
        super().__init__()
        self.d, self.n, self.m = d, n, m
        self.enc_v, self.enc_c = _encoder(VAR_FEATURES, d), _encoder(CON_FEATURES, d)
        self.heads = _Heads(d)
        self.w1 = nn.Parameter(torch.randn(layers, d, d) / d**0.5)
        self.w2 = nn.Parameter(torch.randn(layers, d, d) / d**0.5)
        self.u = nn.Parameter(torch.randn(layers, d) / d**0.5)

    def forward(self, g: Graph, budget: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled (x, y) after all layers (``budget`` is ignored: the depth is fixed)."""
        ev, ec = self.enc_v(g["var"]), self.enc_c(g["con"])
        hv = torch.zeros_like(ev)
        hc = torch.zeros_like(ec)
        for w1, w2, u in zip(self.w1, self.w2, self.u, strict=True):
            xhat = self.heads.x(hv).squeeze(-1)
            viol = _violation(_spmm(g, xhat.unsqueeze(-1), False).squeeze(-1), g)
            hc = torch.tanh(ec + _spmm(g, hv @ w1, False) + viol.unsqueeze(-1) * u)
            hv = torch.tanh(ev + _spmm(g, hc @ w2, True))
        return self.heads.x(hv).squeeze(-1), self.heads.y(hc).squeeze(-1)


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters())


def build_models(spec: ModelSpec, n: int, m: int) -> dict[str, nn.Module]:
    """``{"pdhg", "gnn", "explicit"}``; the two GNNs are sized to the learned PDHG's parameter count."""
    return {
        "pdhg": LearnedPDHG(spec, n, m),
        "gnn": DEQGNN(spec, n, m),
        "explicit": ExplicitGNN(spec.explicit_width, spec.explicit_layers, n, m),
    }


def train(
    model: nn.Module,
    data: GraphBatch,
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    device: str,
    warm_start: bool = False,
    dual_weight: float = 1.0,
) -> tuple[nn.Module, float]:
    """Adam on scaled x's squared error plus ``dual_weight`` times scaled y's; returns model, last loss.

    With ``warm_start``, an implicit model's solve for each training instance starts from that instance's
    last equilibrium (a cache of z*), so the training solves reach the fixed point over the epochs.
    """
    torch.manual_seed(seed)
    model.to(device).train()
    g_all = graph_tensors(data, device)
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.float32, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    generator = torch.Generator(device=device).manual_seed(seed)
    loss = torch.zeros((), device=device)
    cache = None
    if warm_start and isinstance(model, _Implicit):
        cache = g_all["var"].new_zeros(data.size, (model.n + model.m) * model.d)
    for _ in tqdm(range(steps), desc=f"train {type(model).__name__}", leave=False):
        index = torch.randint(0, data.size, (min(batch, data.size),), generator=generator, device=device)
        g = {k: v[index] for k, v in g_all.items()}
        if cache is None:
            px, py = model(g)
        else:
            px, py, z = model.solve(g, cache[index])
            cache[index] = z.detach()
        loss = torch.mean((px - xt[index]) ** 2) + dual_weight * torch.mean((py - yt[index]) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    return model, float(loss.detach())


def predict(
    model: nn.Module, data: GraphBatch, budget: int | None, device: str, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled (x, y) as numpy after exactly ``budget`` iterations (None: the equilibrium / full depth)."""
    xs, ys = [], []
    with torch.no_grad():
        for lo in range(0, data.size, chunk):
            px, py = model(graph_tensors(data.take(slice(lo, lo + chunk)), device), budget)
            xs.append(px.double().cpu().numpy())
            ys.append(py.double().cpu().numpy())
    return np.concatenate(xs), np.concatenate(ys)


def residual(model: nn.Module, data: GraphBatch, budget: int, device: str) -> np.ndarray:
    """Per-instance relative fixed-point residuals after ``budget`` iterations."""
    with torch.no_grad():
        return model.residual(graph_tensors(data, device), budget).double().cpu().numpy()
