"""DEQ-HQS / DEQ-PGD in PyTorch: a residual CNN denoiser inside a data-consistency iteration, via deq-core.

``HQSCell``: ``z <- D((A*A + mu I)^-1 (A*y + mu z), sigma)`` (exact FFT/pixelwise proximal step when the
operator has ``data_prox``, else ``cg_steps`` conjugate-gradient steps from ``z``); ``PGDCell``:
``z <- D(z - eta A*(A z - y), sigma)``. ``mu``, ``eta`` and the denoiser's noise level ``sigma`` are
learnable (log-parametrised; ``mu`` and ``eta`` relative to ``||A||^2``). ``Implicit`` is the DEQ of a cell
started from ``cell.init(y)`` (the direct reconstruction: the measurement for blur/denoise, FBP for CT; or
zeros); ``Explicit`` applies the same cell once to the direct reconstruction: the same network and
parameter count, trained as a one-shot model; ``Unrolled`` chains K cells with untied weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from deq_core.torch import DEQ
from deq_core.torch.analysis import iterate
from deq_core.torch.regularizers import spectral_normalize
from deq_imaging.models import family
from deq_imaging.operators import torch as ops


class OperatorFamily(family.OperatorFamily):
    """The torch operators of a task."""

    operators = ops

    def zeros(self, y: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
        """Zero images (N, C, *image_shape) like ``y``."""
        return y.new_zeros((*y.shape[:-2], *image_shape))


class Denoiser(nn.Module):
    """Residual CNN ``D(x, sigma) = x - net([x, sigma])``: ``depth`` 3x3 convs of ``features`` channels."""

    def __init__(self, channels: int = 1, features: int = 32, depth: int = 6, spectral: bool = False):
        """Build the network (optionally spectrally normalised); the last layer starts near zero."""
        super().__init__()
        if depth < 2:
            raise ValueError(f"Denoiser depth must be >= 2, got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(channels + 1, features, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU()]
        last = nn.Conv2d(features, channels, 3, padding=1)
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.zero_()
        self.net = nn.Sequential(*layers, last)
        if spectral:
            spectral_normalize(self.net)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` (N, C, H, W) at noise level ``sigma`` (a scalar tensor)."""
        level = sigma.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
        return x - self.net(torch.cat([x, level], dim=1))


def conjugate_gradient(
    op: Any, y: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, steps: int
) -> torch.Tensor:
    """``steps`` CG iterations on ``(A*A + mu I) x = A*y + mu z`` from ``x = z``, per image."""
    dims = tuple(range(1, z.ndim))
    tiny = torch.finfo(z.dtype).tiny

    def normal(v: torch.Tensor) -> torch.Tensor:
        return op.adjoint(op.forward(v)) + mu * v

    x = z
    r = op.adjoint(y) + mu * z - normal(x)
    p, rs = r, (r * r).sum(dims, keepdim=True)
    for _ in range(steps):
        ap = normal(p)
        alpha = rs / (p * ap).sum(dims, keepdim=True).clamp_min(tiny)
        x, r = x + alpha * p, r - alpha * ap
        rs_new = (r * r).sum(dims, keepdim=True)
        p, rs = r + rs_new / rs.clamp_min(tiny) * p, rs_new
    return x


def richardson(
    op: Any, y: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, norm2: float, steps: int
) -> torch.Tensor:
    """``steps`` fixed-step gradient iterations on ``(A*A + mu I) x = A*y + mu z`` from ``x = z`` (step
    ``1 / (||A||^2 + mu)``): a linear, nonexpansive map of ``z``, unlike CG, whose step size depends on it."""
    eta = 1.0 / (norm2 + mu)
    b = op.adjoint(y) + mu * z
    x = z
    for _ in range(steps):
        x = x - eta * (op.adjoint(op.forward(x)) + mu * x - b)
    return x


class _Cell(nn.Module):
    """Shared parts of the cells: operators, denoiser, learnable noise level."""

    def __init__(self, family: OperatorFamily, denoiser: Denoiser, sigma0: float, start: str = "direct"):
        super().__init__()
        self.family, self.denoiser, self.start = family, denoiser, start
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma0)))

    def init(self, y: torch.Tensor) -> torch.Tensor:
        """The starting image of the iteration for measurements ``y`` (``direct`` or ``zero``)."""
        return self.family.init(y, self.start)

    def sigma(self) -> torch.Tensor:
        """The denoiser's learned noise level."""
        return self.log_sigma.exp()


class HQSCell(_Cell):
    """Half-quadratic splitting: ``z <- D(prox_data(z; mu), sigma)`` with learnable ``mu`` and ``sigma``."""

    def __init__(
        self,
        family: OperatorFamily,
        denoiser: Denoiser,
        mu0: float,
        sigma0: float,
        cg_steps: int = 0,
        inner: str = "cg",
        start: str = "direct",
    ):
        """``cg_steps`` > 0 replaces the closed-form proximal step by that many ``inner`` steps (``cg`` or
        ``richardson``)."""
        super().__init__(family, denoiser, sigma0, start)
        self.log_mu = nn.Parameter(torch.tensor(math.log(mu0)))
        self.cg_steps, self.inner = cg_steps, inner

    def data_step(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(A*A + mu I)^-1 (A*y + mu z)`` (exact, or by CG or Richardson steps)."""
        op = self.family.get(y.shape)
        norm2 = self.family.norm2(y.shape)
        mu = self.log_mu.exp().to(z.dtype) * norm2
        if self.cg_steps == 0 and hasattr(op, "data_prox"):
            return op.data_prox(y, z, mu.reshape(1).expand(z.shape[0]))
        if self.inner == "richardson":
            return richardson(op, y, z, mu, norm2, max(self.cg_steps, 1))
        return conjugate_gradient(op, y, z, mu, max(self.cg_steps, 1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One HQS iteration."""
        return self.denoiser(self.data_step(z, y), self.sigma())


class PGDCell(_Cell):
    """Proximal gradient: ``z <- D(z - eta A*(A z - y), sigma)`` with learnable ``eta`` and ``sigma``."""

    def __init__(
        self, family: OperatorFamily, denoiser: Denoiser, eta0: float, sigma0: float, start: str = "direct"
    ):
        """``eta0`` is the initial step in units of ``1 / ||A||^2``."""
        super().__init__(family, denoiser, sigma0, start)
        self.log_eta = nn.Parameter(torch.tensor(math.log(eta0)))

    def data_step(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One gradient step on ``||A z - y||^2 / 2``."""
        op = self.family.get(y.shape)
        eta = self.log_eta.exp().to(z.dtype) / self.family.norm2(y.shape)
        return z - eta * op.adjoint(op.forward(z) - y)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One PGD iteration."""
        return self.denoiser(self.data_step(z, y), self.sigma())


class Implicit(nn.Module):
    """The DEQ of a cell, started from ``cell.init(y)``; ``budget(y, t)`` is the t-th iterate."""

    def __init__(self, cell: _Cell, **solve_options: Any):
        """``solve_options`` as for :class:`deq_core.torch.DEQ` (training solve)."""
        super().__init__()
        self.deq = DEQ(cell, **solve_options)

    def forward(self, y: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
        """The equilibrium reconstruction (from ``z0``, e.g. a cached iterate, or the cell's start)."""
        return self.deq(y, self.deq.cell.init(y) if z0 is None else z0)[0]

    def budget(self, y: torch.Tensor, steps: int, z0: torch.Tensor | None = None) -> torch.Tensor:
        """The reconstruction after exactly ``steps`` solver iterations from ``z0`` (default: the start)."""
        z0 = self.deq.cell.init(y) if z0 is None else z0
        return iterate(self.deq.cell, z0, y, steps, self.deq.options.solver)


class Explicit(nn.Module):
    """The same cell applied once to the direct reconstruction: a one-shot network of the same size."""

    def __init__(self, cell: _Cell):
        """Wrap a freshly initialised cell."""
        super().__init__()
        self.cell = cell

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``cell(direct(y), y)``."""
        return self.cell(self.cell.family.direct(y), y)


class Unrolled(nn.Module):
    """``K`` cells with their own weights applied in sequence from the first cell's start: the untied
    (unrolled) counterpart of the DEQ, with ``K`` times its parameters, trained by backpropagation."""

    def __init__(self, cells: list[_Cell]):
        """Chain ``cells`` (at least one)."""
        super().__init__()
        if not cells:
            raise ValueError("Unrolled needs at least one cell")
        self.cells = nn.ModuleList(cells)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``cell_K(... cell_1(init(y), y) ..., y)``."""
        z = self.cells[0].init(y)
        for cell in self.cells:
            z = cell(z, y)
        return z


def build_cell(spec: Any, cfg: Any, channels: int = 1) -> _Cell:
    """The cell ``cfg`` describes (an :class:`~deq_imaging.models.config.ImagingConfig`) for ``spec``."""
    operators = OperatorFamily(spec)
    denoiser = Denoiser(channels, cfg.features, cfg.depth, cfg.spectral_norm)
    if cfg.model == "pgd":
        return PGDCell(operators, denoiser, cfg.eta0, cfg.sigma0, cfg.start)
    steps, inner = family.data_step_choice(spec.kind, cfg.data_step, cfg.cg_steps)
    return HQSCell(operators, denoiser, cfg.mu0, cfg.sigma0, steps, inner, cfg.start)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
