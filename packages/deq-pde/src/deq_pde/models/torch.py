"""PyTorch FNOs: the modules holding the parameters, whose math is :mod:`deq_pde.models.fourier`.

Models map a raw grid input ``(B, n, n)`` (Darcy coefficient or forcing) to the raw solution ``(B, n, n)``;
normalisation constants are buffers fitted on the training set. Training goes through
:func:`deq_core.torch.train.fit`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deq_core.errors import ModelFileError
from deq_core.torch import DEQ
from deq_core.torch.analysis import iterate_exactly
from deq_core.torch.train import fit
from deq_core.torch.weights import load_weights
from deq_core.torch.weights import save_weights as save_weights
from deq_pde.models import fourier
from deq_pde.models.fourier import POWER_ITERS
from deq_pde.models.fourier import relative_l2 as relative_l2
from deq_pde.models.schedule import fit_epochs
from deq_pde.models.settings import ModelSettings, TrainSettings, grid_channels


class SpectralConv2d(nn.Module):
    """Fourier-space linear map on the lowest ``modes`` x ``modes`` frequencies (two corners of rfft2)."""

    def __init__(self, width: int, modes: int):
        super().__init__()
        self.modes = modes
        scale = 1.0 / (width * width)
        self.weight = nn.Parameter(scale * torch.rand(2, width, width, modes, modes, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply to ``z`` (B, C, H, W)."""
        return fourier.spectral_conv(z, torch.view_as_complex(self.weight), self.modes)


class FourierLayer(nn.Module):
    """``gelu(s (K z + W z) + x)``: spectral plus pointwise conv, optional injection and contraction.

    See :mod:`deq_pde.models.fourier` for the contraction ``c``; ``None`` (explicit FNO layers) leaves the
    layer unconstrained.
    """

    def __init__(self, width: int, modes: int, contraction: float | None = None):
        super().__init__()
        self.spectral = SpectralConv2d(width, modes)
        self.pointwise = nn.Conv2d(width, width, 1)
        self.contraction = contraction

    def mode_matrices(self) -> torch.Tensor:
        """The complex (modes + 1, out, in) matrices ``K_mode + W`` per kept Fourier mode, and ``W``."""
        weight = torch.view_as_complex(self.spectral.weight)
        return fourier.mode_matrices(weight, self.pointwise.weight[:, :, 0, 0])

    def operator_norm(self, iters: int = POWER_ITERS) -> torch.Tensor:
        """Spectral norm of ``z -> K z + W z`` (bias excluded) by power iteration on every mode matrix."""
        return fourier.operator_norm(self.mode_matrices(), torch.Tensor.detach, iters)

    def scale(self) -> torch.Tensor:
        """``min(1, c / ||K + W||)``: the factor that makes the layer a contraction (1 without ``c``)."""
        if self.contraction is None:
            return self.pointwise.weight.new_ones(())
        return fourier.contraction_scale(self.contraction, self.operator_norm())

    def forward(self, z: torch.Tensor, args: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """An explicit layer ``gelu(K z + W z)``, or with ``args = (x, scale)`` one FNO-DEQ cell step."""
        linear = self.spectral(z) + self.pointwise(z)
        return fourier.layer_output(linear, args, self.pointwise.bias, F.gelu)


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
        self.scales.copy_(fourier.codec_scales(inputs, outputs))

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        """(B, n, n) raw input -> (B, width, n, n) lifted features."""
        return self.lift(fourier.lift_input(a, self.scales, self.grid))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, width, n, n) features -> (B, n, n) raw solution."""
        return fourier.denormalize(self.out(F.gelu(self.hidden(z))).squeeze(1), self.scales)


class FNODEQ(nn.Module):
    """FNO-DEQ: lift, the fixed point of one weight-tied Fourier layer with input injection, projection."""

    def __init__(self, n: int, settings: ModelSettings):
        super().__init__()
        self.codec = Codec(n, settings)
        self.deq = DEQ(FourierLayer(settings.width, settings.modes, settings.contraction), settings.solve)

    def forward(self, a: torch.Tensor, z0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, z)``: the prediction and the hidden state after the training budget from ``z0``."""
        return fourier.equilibrium(self, a, z0)

    def inject(self, a: torch.Tensor) -> torch.Tensor:
        """The injection ``K v + W v`` of the lifted input ``v`` (bias excluded: the cell adds it)."""
        v = self.codec.encode(a)
        return self.deq.cell.spectral(v) + F.conv2d(v, self.deq.cell.pointwise.weight)

    def budget(self, a: torch.Tensor, steps: int) -> torch.Tensor:
        """The prediction after exactly ``steps`` iterations from zero (test-time compute budget)."""
        return fourier.budget(self, a, steps, iterate_exactly)


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
        return fourier.explicit_forward(self.codec, self.layers, a)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (a complex spectral weight counts as two reals)."""
    return sum(p.numel() for p in model.parameters())


def train(
    model: FNODEQ | FNO, inputs, targets, settings: TrainSettings, seed: int, **checkpoints
) -> list[float]:
    """Minimise the mean relative L2 error with AdamW and cosine decay; returns the mean loss per epoch.

    An FNO-DEQ warm-starts each training sample from its last hidden state. ``checkpoints``
    (``checkpoint_dir``, ``checkpoint_every``, ``stop_after``) are those of
    :func:`~deq_pde.models.schedule.train_config`: a run cut short resumes from its last checkpoint.
    """
    model.codec.fit(inputs, targets)
    n, device = inputs.shape[0], inputs.device
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps = settings.steps(n)
    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 0.5 * (1 + math.cos(math.pi * k / steps)))

    def orders() -> Iterator[np.ndarray]:
        generator = torch.Generator(device=device).manual_seed(seed)
        while True:
            yield torch.randperm(n, generator=generator, device=device).cpu().numpy()

    data = (inputs, targets)
    _, losses = fit_epochs(
        fit, model, optimizer, data, settings, seed, orders, np.float32, checkpoints, scheduler=cosine
    )
    model.eval()
    return losses


def to_tensor(array: np.ndarray, device: str) -> torch.Tensor:
    """A float32 tensor of ``array`` on ``device``."""
    return torch.as_tensor(np.asarray(array), dtype=torch.float32, device=device)


def predict(
    model: nn.Module, inputs: torch.Tensor, batch: int = 64, steps: int | None = None
) -> torch.Tensor:
    """Batched no-grad prediction of ``model(inputs)`` (``u`` of an FNO-DEQ), or of ``model.budget``."""
    with torch.no_grad():
        parts = [
            model(inputs[i : i + batch]) if steps is None else model.budget(inputs[i : i + batch], steps)
            for i in range(0, inputs.shape[0], batch)
        ]
    return torch.cat([fourier.solution(part) for part in parts])


WEIGHTS = "weights.safetensors"
"""The weights file of a model folder (:mod:`deq_pde.models.files`)."""


def read(path: Path, n: int, settings: ModelSettings, depth: int | None, device: str | None) -> nn.Module:
    """The FNO-DEQ (``depth`` None) or FNO of the safetensors file ``path``, on ``device``, in eval mode."""
    model = (FNODEQ(n, settings) if depth is None else FNO(n, settings, depth)).to(device or "cpu")
    load_weights(model, path, ModelFileError)
    return model.eval()


def apply(model: nn.Module, inputs, steps: int | None) -> np.ndarray:
    """:func:`predict` of numpy (or tensor) ``inputs`` on the model's device, as numpy."""
    batch = torch.as_tensor(inputs, dtype=torch.float32, device=model.codec.grid.device)
    return predict(model, batch, steps=steps).cpu().numpy()
