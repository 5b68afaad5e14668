"""DEQ-HQS / DEQ-PGD in PyTorch: the shared cells and networks as ``nn.Module``s, and the torch denoiser.

The math of every class is in :mod:`deq_imaging.models.cells` and :mod:`deq_imaging.models.networks`; here
they get torch parameters (``_Torch``) and the residual CNN ``Denoiser``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deq_core.errors import ModelFileError
from deq_core.torch import DEQ
from deq_core.torch.analysis import iterate_exactly
from deq_core.torch.regularizers import spectral_normalize
from deq_core.torch.weights import load_weights, save_weights
from deq_imaging.models import cells, networks
from deq_imaging.models.cells import conjugate_gradient, richardson  # noqa: F401 (this module's interface)
from deq_imaging.models.family import OperatorFamily  # noqa: F401


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


class _Torch(nn.Module):
    """What a shared model class needs from torch: module set-up, parameters, module lists, the DEQ."""

    _deq_class = DEQ
    _iterate = staticmethod(iterate_exactly)
    _sequence = nn.ModuleList

    def _begin(self) -> None:
        nn.Module.__init__(self)

    @staticmethod
    def _scalar(value: float) -> nn.Parameter:
        return nn.Parameter(torch.tensor(value))


class HQSCell(cells.HQS, _Torch):
    """Half-quadratic splitting cell (:class:`deq_imaging.models.cells.HQS`) with torch parameters."""


class PGDCell(cells.PGD, _Torch):
    """Proximal-gradient cell (:class:`deq_imaging.models.cells.PGD`) with torch parameters."""


class ImplicitNet(networks.ImplicitNet, _Torch):
    """The DEQ of a cell (:class:`deq_imaging.models.networks.ImplicitNet`) as a torch module."""


class Explicit(networks.Explicit, _Torch):
    """The explicit twin (:class:`deq_imaging.models.networks.Explicit`) as a torch module."""


class Unrolled(networks.Unrolled, _Torch):
    """The unrolled network (:class:`deq_imaging.models.networks.Unrolled`) as a torch module."""


def build_cell(spec: object, cfg: object, channels: int = 1) -> cells.Cell:
    """The cell ``cfg`` describes (an :class:`~deq_imaging.models.config.ImagingConfig`) for ``spec``."""
    denoiser = Denoiser(channels, cfg.features, cfg.depth, cfg.spectral_norm)  # type: ignore[attr-defined]
    return cells.build(spec, cfg, denoiser, HQSCell, PGDCell)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


WEIGHTS = "weights.safetensors"


def save(model: nn.Module, folder: Path) -> list[str]:
    """Write ``model``'s weights into the model folder being written, as safetensors; their file names."""
    save_weights(model, folder / WEIGHTS)
    return [WEIGHTS]


def load(like: nn.Module, folder: Path) -> nn.Module:
    """``like`` (built from the folder's config) with the weights of model folder ``folder`` (in place);
    weights that do not fit raise :class:`~deq_core.errors.ModelFileError` naming the file."""
    load_weights(like, folder / WEIGHTS, ModelFileError)
    return like
