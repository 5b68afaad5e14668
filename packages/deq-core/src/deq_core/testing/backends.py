"""Thin adapters that let one suite drive each framework: arrays in and out, gradients, modules.

Each adapter imports its framework lazily, so importing this module needs neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class TorchBackend:
    """The conformance suite's view of :mod:`deq_core.torch`."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        import deq_core.torch as deq

        self.torch, self.deq, self.xp = torch, deq, torch

    def asarray(self, x: np.ndarray, dtype: str = "float64") -> Any:
        return self.torch.as_tensor(np.asarray(x), dtype=getattr(self.torch, dtype))

    def numpy(self, x: Any) -> np.ndarray:
        return x.detach().float().numpy() if x.dtype == self.torch.bfloat16 else x.detach().numpy()

    def cast(self, x: Any, dtype: str) -> Any:
        return x.to(getattr(self.torch, dtype))

    def fixed_point(self, f: Callable, z0: Any, args: Any, **options) -> Any:
        return self.deq.fixed_point(f, z0, args, **options)

    def value_and_grad(
        self, loss: Callable[[dict], Any], params: dict[str, np.ndarray]
    ) -> tuple[float, dict]:
        """``loss(params)`` and its gradient, params given and returned as numpy arrays."""
        tensors = {k: self.asarray(v).requires_grad_() for k, v in params.items()}
        value = loss(tensors)
        grads = self.torch.autograd.grad(value, list(tensors.values()), allow_unused=True)
        return float(value.detach()), {
            k: np.zeros_like(params[k]) if g is None else g.numpy()
            for k, g in zip(tensors, grads, strict=True)
        }

    def tanh_module(self, W: np.ndarray) -> Any:
        """An ``nn.Module`` cell ``z -> tanh(W z + x)`` holding ``W`` as a parameter."""
        torch = self.torch

        class Cell(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.W = torch.nn.Parameter(torch.as_tensor(W))

            def forward(self, z, x):
                return torch.tanh(z @ self.W.T + x)

        return Cell()

    def module_grad(self, deq: Any, x: Any, z0: Any) -> np.ndarray:
        """Gradient of ``sum(DEQ(x)^2)`` with respect to the cell's ``W``."""
        z, _ = deq(x, z0)
        (g,) = self.torch.autograd.grad((z**2).sum(), [deq.cell.W])
        return g.numpy()


class JaxBackend:
    """The conformance suite's view of :mod:`deq_core.jax` (float64 under ``fixtures.jax_x64()``)."""

    name = "jax"

    def __init__(self) -> None:
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        import deq_core.jax as deq

        self.jax, self.jnp, self.eqx, self.deq, self.xp = jax, jnp, eqx, deq, jnp

    def asarray(self, x: np.ndarray, dtype: str = "float64") -> Any:
        return self.jnp.asarray(np.asarray(x), dtype=getattr(self.jnp, dtype))

    def numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64 if x.dtype == self.jnp.bfloat16 else x.dtype)

    def cast(self, x: Any, dtype: str) -> Any:
        return x.astype(getattr(self.jnp, dtype))

    def fixed_point(self, f: Callable, z0: Any, args: Any, **options) -> Any:
        return self.deq.fixed_point(f, z0, args, **options)

    def value_and_grad(
        self, loss: Callable[[dict], Any], params: dict[str, np.ndarray]
    ) -> tuple[float, dict]:
        """``loss(params)`` and its gradient, params given and returned as numpy arrays."""
        value, grads = self.jax.value_and_grad(loss)({k: self.asarray(v) for k, v in params.items()})
        return float(value), {k: np.asarray(g) for k, g in grads.items()}

    def tanh_module(self, W: np.ndarray) -> Any:
        """An ``eqx.Module`` cell ``z -> tanh(W z + x)`` holding ``W``."""
        jnp, eqx = self.jnp, self.eqx

        class Cell(eqx.Module):
            W: Any

            def __call__(self, z, x):
                return jnp.tanh(z @ self.W.T + x)

        return Cell(jnp.asarray(W))

    def module_grad(self, deq: Any, x: Any, z0: Any) -> np.ndarray:
        """Gradient of ``sum(DEQ(x)^2)`` with respect to the cell's ``W``."""

        @self.eqx.filter_grad
        def grad(model):
            z, _ = model(x, z0)
            return (z**2).sum()

        return np.asarray(grad(deq).cell.W)


BACKENDS = {"torch": TorchBackend, "jax": JaxBackend}
