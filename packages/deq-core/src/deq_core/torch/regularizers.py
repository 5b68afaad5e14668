"""Stabilisers for PyTorch DEQs: the Hutchinson Jacobian-Frobenius penalty and spectral normalisation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def jacobian_frobenius(
    f: Callable[[torch.Tensor, Any], torch.Tensor], z: torch.Tensor, args: Any = None, probes: int = 1
) -> torch.Tensor:
    """Hutchinson estimate of ``||J_f(z)||_F^2 / d``, averaged over the batch (Bai et al. 2021).

    ``J_f`` is the Jacobian of ``f(., args)`` at ``z`` (``z*`` of a DEQ; treated as a constant), ``d`` the
    number of entries per sample. Each of the ``probes`` standard normal probes ``v`` gives the unbiased
    ``||v^T J||^2``; the result is differentiable in ``f``'s parameters and ``args`` (double backward).
    Probes come from torch's global RNG on ``z``'s device.
    """
    if probes < 1:
        raise ValueError(f"jacobian_frobenius probes must be >= 1, got {probes}")
    with torch.enable_grad():
        z = z.detach().requires_grad_()
        fz = f(z, args)
        if fz.shape != z.shape:
            raise ValueError(f"jacobian_frobenius: f(z) has shape {tuple(fz.shape)}, z has {tuple(z.shape)}")
        total = z.new_zeros(())
        for _ in range(probes):
            v = torch.randn_like(fz)
            (vj,) = torch.autograd.grad(fz, z, v, create_graph=True, retain_graph=True)
            total = total + vj.pow(2).sum()
    return total / (probes * z.numel())


@contextlib.contextmanager
def cached_parametrizations(module: nn.Module) -> Iterator[None]:
    """Compute every parametrized tensor of ``module`` (e.g. a spectral-normalised weight) once, on entry.

    Inside, all accesses reuse those tensors: a DEQ's solver iterations (run without gradient tracking)
    and its differentiable surrogate see one weight, whose graph (made in the caller's grad mode) reaches
    the underlying parameter. A plain ``parametrize.cached()`` would cache lazily, i.e. the weight the
    first solver iteration makes under ``no_grad``, and the parameter would get no gradient.
    """
    with parametrize.cached():
        for layer in module.modules():
            if parametrize.is_parametrized(layer):
                for name in layer.parametrizations:
                    getattr(layer, name)
        yield


def spectral_normalize(
    module: nn.Module, types: tuple[type, ...] = _LAYERS, power_iterations: int = 1
) -> nn.Module:
    """Apply ``torch.nn.utils.parametrizations.spectral_norm`` to the ``weight`` of every ``types`` layer.

    Returns ``module`` (changed in place; build the optimizer afterwards). In training mode each access of
    a weight runs ``power_iterations`` power-iteration steps: run the model under
    :func:`cached_parametrizations` (as :func:`deq_core.torch.train.fit` does) so that all solver
    iterations of one forward see the same normalised weight and its parameter gets a gradient.
    """
    layers = [
        m
        for m in module.modules()
        if isinstance(m, types) and isinstance(getattr(m, "weight", None), nn.Parameter)
    ]
    if not layers:
        names = ", ".join(t.__name__ for t in types)
        raise ValueError(f"spectral_normalize: {type(module).__name__} has no {names} layer with a weight")
    for layer in layers:
        parametrizations.spectral_norm(layer, n_power_iterations=power_iterations)
    return module
