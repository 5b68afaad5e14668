"""The array backends installed here, so one test runs the shared numerics on each against numpy.

Torch and JAX never share a virtualenv: a test run sees ``numpy`` plus one of them. ``x64`` (a fixture in
``conftest.py``) turns JAX's float64 on for one test and restores it; without it JAX runs in float32.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

FRAMEWORKS = [name for name in ("torch", "jax") if importlib.util.find_spec(name) is not None]
NAMES = ["numpy", *FRAMEWORKS]


def asarray(backend: str, x: Any, dtype: str = "float64") -> Any:
    """``x`` as an array of ``backend`` with ``dtype`` (a numpy dtype name)."""
    x = np.asarray(x, dtype=dtype)
    if backend == "torch":
        import torch

        return torch.from_numpy(x.copy())
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.asarray(x)
    return x


def to_numpy(x: Any) -> np.ndarray:
    """A backend array's values as numpy."""
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)


def compiled(backend: str, f: Callable) -> Callable:
    """``f`` under ``jax.jit`` for JAX (one compile instead of one per eager primitive), else ``f``."""
    if backend == "jax":
        import jax

        return jax.jit(f)
    return f


def gradient(f: Callable[[Any], Any], x: Any) -> Any:
    """The gradient of the scalar ``f`` at the backend array ``x`` (jitted in JAX)."""
    if hasattr(x, "requires_grad_"):
        import torch

        x = x.clone().requires_grad_(True)
        return torch.autograd.grad(f(x), x)[0]
    import jax

    return jax.jit(jax.grad(f))(x)


def assembler(backend: str, space: Any) -> Any:
    """The batched assembler of ``backend`` for ``space``."""
    if backend == "torch":
        from deq_pde.operators.torch import TorchAssembler

        return TorchAssembler(space)
    if backend == "jax":
        from deq_pde.operators.jax import JaxAssembler

        return JaxAssembler(space)
    from deq_pde.operators.batched import BatchedAssembler

    return BatchedAssembler(space)
