"""PyTorch FNOs: spectral convolution (rfft2), FNO-DEQ through ``deq_core.torch.DEQ``, explicit FNO, training.

Models map a raw grid input ``(B, n, n)`` (Darcy coefficient or forcing) to the raw solution ``(B, n, n)``;
normalisation constants are buffers fitted on the training set.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from deq_core.config import Phantom
from deq_core.torch import DEQ
from deq_core.torch.analysis import iterate
from deq_pde.models.settings import ModelSettings, TrainSettings, grid_channels

POWER_ITERS = 10


class SpectralConv2d(nn.Module):
    """Fourier-space linear map on the lowest ``modes`` x ``modes`` frequencies (two corners of rfft2)."""

    def __init__(self, width: int, modes: int):
        super().__init__()
        self.modes = modes
        scale = 1.0 / (width * width)
        self.weight = nn.Parameter(scale * torch.rand(2, width, width, modes, modes, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply to ``z`` (B, C, H, W)."""
        b, c, h, w = z.shape
        zf = torch.fft.rfft2(z)
        m1, m2 = min(self.modes, h // 2), min(self.modes, w // 2 + 1)
        weight = torch.view_as_complex(self.weight)
        top = torch.einsum("bixy,ioxy->boxy", zf[:, :, :m1, :m2], weight[0, :, :, :m1, :m2])
        bottom = torch.einsum("bixy,ioxy->boxy", zf[:, :, h - m1 :, :m2], weight[1, :, :, :m1, :m2])
        middle = zf.new_zeros(b, c, h - 2 * m1, m2)
        left = torch.cat([top, middle, bottom], dim=2)
        out = torch.cat([left, zf.new_zeros(b, c, h, zf.shape[-1] - m2)], dim=3)
        return torch.fft.irfft2(out, s=(h, w))


class FourierLayer(nn.Module):
    """``gelu(s (K z + W z) + x)``: spectral plus pointwise conv, optional injection ``x`` and contraction.

    With ``contraction = c`` the linear part is rescaled by ``s = min(1, c / ||K + W||)``, where the operator
    norm is the largest singular value over the Fourier modes of ``K_mode + W`` (and of ``W`` alone).
    As GELU is 1.13-Lipschitz, ``c < 0.88`` makes ``z -> f(z, x)`` a contraction: iterates from any start
    converge. ``contraction = None`` (explicit FNO layers) leaves the layer unconstrained.
    """

    def __init__(self, width: int, modes: int, contraction: float | None = None):
        super().__init__()
        self.spectral = SpectralConv2d(width, modes)
        self.pointwise = nn.Conv2d(width, width, 1)
        self.contraction = contraction

    def mode_matrices(self) -> torch.Tensor:
        """The complex (modes + 1, out, in) matrices ``K_mode + W`` per kept Fourier mode, and ``W``."""
        weight = torch.view_as_complex(self.spectral.weight)  # (2, in, out, m, m)
        modes = weight.permute(0, 3, 4, 2, 1).reshape(-1, weight.shape[2], weight.shape[1])
        pointwise = self.pointwise.weight[:, :, 0, 0].to(modes.dtype)
        return torch.cat([modes + pointwise, pointwise[None]])

    def operator_norm(self, iters: int = POWER_ITERS) -> torch.Tensor:
        """Spectral norm of ``z -> K z + W z`` (bias excluded): power iteration on every mode matrix.

        ``iters`` rounds on ``M^H M`` from a fixed start (no gradient), then ``max ||M v||`` (differentiable).
        """
        matrices = self.mode_matrices()
        size = matrices.shape[-1]
        start = 1.5 + torch.cos(1.7 * torch.arange(size, device=matrices.device))
        v = start.to(matrices.dtype).expand(matrices.shape[0], size).unsqueeze(-1)
        with torch.no_grad():
            for _ in range(iters):
                v = matrices.mH @ (matrices @ v)
                v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)
        return torch.linalg.vector_norm(matrices @ v, dim=1).max()

    def scale(self) -> torch.Tensor:
        """``min(1, c / ||K + W||)``: the factor that makes the layer a contraction (1 without ``c``)."""
        if self.contraction is None:
            return self.pointwise.weight.new_ones(())
        return torch.clamp(self.contraction / self.operator_norm(), max=1.0)

    def forward(self, z: torch.Tensor, args: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """An explicit layer ``gelu(K z + W z)``, or with ``args = (x, scale)`` one FNO-DEQ cell step."""
        out = self.spectral(z) + self.pointwise(z)
        if args is None:
            return F.gelu(out)
        x, scale = args
        bias = self.pointwise.bias[:, None, None]
        return F.gelu(scale * (out - bias) + bias + x)


class Codec(nn.Module):
    """Input normalisation, grid channels and lift to ``width``; projection and output de-normalisation."""

    def __init__(self, n: int, settings: ModelSettings):
        super().__init__()
        self.lift = nn.Conv2d(3, settings.width, 1)
        self.hidden = nn.Conv2d(settings.width, settings.projection, 1)
        self.out = nn.Conv2d(settings.projection, 1, 1)
        self.register_buffer("grid", torch.as_tensor(grid_channels(n), dtype=torch.float32))
        self.register_buffer("scales", torch.tensor([0.0, 1.0, 0.0, 1.0]))

    def fit(self, inputs: torch.Tensor, outputs: torch.Tensor) -> None:
        """Set the normalisation (mean, std of input and output) from training data."""
        self.scales.copy_(torch.stack([inputs.mean(), inputs.std(), outputs.mean(), outputs.std()]))

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        """(B, n, n) raw input -> (B, width, n, n) lifted features."""
        if a.ndim != 3 or a.shape[1:] != self.grid.shape[1:]:
            raise ValueError(
                f"input must have shape (B, {self.grid.shape[1]}, {self.grid.shape[2]}), got {tuple(a.shape)}"
            )
        a = ((a - self.scales[0]) / self.scales[1]).to(self.grid.dtype).unsqueeze(1)
        grid = self.grid.expand(a.shape[0], -1, -1, -1)
        return self.lift(torch.cat([a, grid], dim=1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, width, n, n) features -> (B, n, n) raw solution."""
        u = self.out(F.gelu(self.hidden(z))).squeeze(1)
        return u * self.scales[3] + self.scales[2]


class FNODEQ(nn.Module):
    """FNO-DEQ: lift, the fixed point of one weight-tied Fourier layer with input injection, projection.

    The lifted input ``v`` is injected through the layer's own linear part, ``x = K v + W v``, so the cell is
    ``z -> gelu(s (K z + W z) + K v + W v + b)``: its first iterate from ``z = 0`` is the explicit depth-1 FNO
    layer ``gelu(K v + W v + b)`` with the same weights; further iterations refine it (no extra parameters).
    """

    def __init__(self, n: int, settings: ModelSettings):
        super().__init__()
        self.codec = Codec(n, settings)
        backward = Phantom(settings.phantom_steps, settings.phantom_tau)
        self.deq = DEQ(
            FourierLayer(settings.width, settings.modes, settings.contraction),
            solver=settings.solver,
            backward=backward,
            tol=0.0,
            max_iter=settings.train_iters,
        )

    def forward(self, a: torch.Tensor, z0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, z)``: the prediction and the hidden state after the training budget from ``z0``."""
        x = self.inject(a)
        z, _ = self.deq((x, self.deq.cell.scale()), torch.zeros_like(x) if z0 is None else z0)
        return self.codec.decode(z), z

    def inject(self, a: torch.Tensor) -> torch.Tensor:
        """The injection ``K v + W v`` of the lifted input ``v`` (bias excluded: the cell adds it)."""
        v = self.codec.encode(a)
        cell = self.deq.cell
        return cell.spectral(v) + F.conv2d(v, cell.pointwise.weight)

    def budget(self, a: torch.Tensor, steps: int) -> torch.Tensor:
        """The prediction after exactly ``steps`` iterations from zero (test-time compute budget)."""
        x = self.inject(a)
        z = iterate(
            self.deq.cell, torch.zeros_like(x), (x, self.deq.cell.scale()), steps, self.deq.options.solver
        )
        return self.codec.decode(z)


class FNO(nn.Module):
    """Explicit FNO: lift, ``depth`` Fourier layers with their own weights, projection."""

    def __init__(self, n: int, settings: ModelSettings, depth: int = 1):
        super().__init__()
        if depth < 1:
            raise ValueError(f"FNO depth must be >= 1, got {depth}")
        self.codec = Codec(n, settings)
        self.layers = nn.ModuleList(FourierLayer(settings.width, settings.modes) for _ in range(depth))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """The prediction for a batch of raw inputs."""
        z = self.codec.encode(a)
        for layer in self.layers:
            z = layer(z)
        return self.codec.decode(z)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (a complex spectral weight counts as two reals)."""
    return sum(p.numel() for p in model.parameters())


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ``||pred - target|| / ||target||`` over the grid."""
    diff = torch.linalg.vector_norm((pred - target).flatten(1), dim=1)
    return diff / torch.linalg.vector_norm(target.flatten(1), dim=1)


def train(
    model: FNODEQ | FNO,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    settings: TrainSettings,
    seed: int,
    desc: str = "train",
) -> list[float]:
    """Minimise the mean relative L2 error; returns the mean loss per epoch.

    An FNO-DEQ is trained with warm starts: each training sample's last hidden state is its next starting
    point, so a few solver iterations plus the phantom gradient track the moving fixed point.
    """
    if inputs.shape != targets.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must match")
    model.codec.fit(inputs, targets)
    n = inputs.shape[0]
    steps = settings.steps(n)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: 0.5 * (1 + math.cos(math.pi * k / steps))
    )
    generator = torch.Generator(device=inputs.device).manual_seed(seed)
    implicit = isinstance(model, FNODEQ)
    cache = None
    if implicit:
        width = model.codec.lift.out_channels
        cache = inputs.new_zeros(n, width, *inputs.shape[1:], dtype=torch.float32)
    history: list[float] = []
    model.train()
    with tqdm(total=steps, desc=desc, leave=False) as bar:
        for _ in range(settings.epochs):
            order = torch.randperm(n, generator=generator, device=inputs.device)
            total = inputs.new_zeros((), dtype=torch.float32)
            for start in range(0, n, settings.batch):
                index = order[start : start + settings.batch]
                if implicit:
                    pred, z = model(inputs[index], cache[index])
                    cache[index] = z.detach()
                else:
                    pred = model(inputs[index])
                loss = relative_l2(pred, targets[index].to(pred.dtype)).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total = total + loss.detach() * index.numel()
                bar.update()
            history.append(float(total) / n)
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()
    return history


def to_tensor(array: np.ndarray, device: str) -> torch.Tensor:
    """A float32 tensor of ``array`` on ``device``."""
    return torch.as_tensor(np.asarray(array), dtype=torch.float32, device=device)


def predict(
    model: nn.Module, inputs: torch.Tensor, batch: int = 64, steps: int | None = None
) -> torch.Tensor:
    """Batched no-grad prediction of ``model(inputs)``, or of ``model.budget(inputs, steps)``.

    An FNO-DEQ returns ``(u, z)``; the prediction is ``u``.
    """
    with torch.no_grad():
        parts = [
            model(inputs[i : i + batch]) if steps is None else model.budget(inputs[i : i + batch], steps)
            for i in range(0, inputs.shape[0], batch)
        ]
    return torch.cat([part[0] if isinstance(part, tuple) else part for part in parts])
