"""Operator checks shared by the tests: inner products, random pairs, and each backend's arrays."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from deq_imaging.operators import reference

BACKENDS = ("numpy", "torch", "jax")


def inner(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product in float64."""
    return float(np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)))


def random_pair(op: object, channels: int, seed: int, batch: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Positive random x (batch, C, H, W) and y (batch, C, *output_shape), float64."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, channels, *op.image_shape))  # type: ignore[attr-defined]
    y = rng.random((batch, channels, *op.output_shape))  # type: ignore[attr-defined]
    return x, y


def check_adjoint(forward: Callable, adjoint: Callable, x: np.ndarray, y: np.ndarray, tol: float) -> float:
    """Assert ``<A x, y> = <x, A* y>`` to relative ``tol``; return the relative gap."""
    lhs, rhs = inner(forward(x), y), inner(x, adjoint(y))
    gap = abs(lhs - rhs) / abs(lhs)
    assert gap < tol, f"adjoint gap {gap:.2e} >= {tol:.0e}"
    return gap


def reference_op(cls: str, args: tuple) -> object:
    """The numpy reference operator of a case."""
    return getattr(reference, cls)(*args)


@dataclass(frozen=True)
class Arrays:
    """One backend at one precision as the tests drive it: numpy in, the backend's arrays, numpy out."""

    backend: str
    dtype: str

    @property
    def tol(self) -> float:
        """Relative tolerance of an exact identity computed in this precision."""
        return 1e-5 if self.dtype == "float32" else 1e-10

    def asarray(self, a: np.ndarray, dtype: str | None = None) -> Any:
        """``a`` as this backend's array in this precision (or in ``dtype``)."""
        dtype = dtype or self.dtype
        if self.backend == "numpy":
            return np.asarray(a, dtype=dtype)
        module = importlib.import_module(self.backend)
        if self.backend == "torch":
            return module.as_tensor(np.asarray(a), dtype=getattr(module, dtype))
        return module.numpy.asarray(a, dtype=dtype)

    def numpy(self, a: Any) -> np.ndarray:
        """A numpy copy of a backend array (checking it kept the precision)."""
        assert str(a.dtype).rsplit(".", 1)[-1] == self.dtype, f"{a.dtype} is not {self.dtype}"
        return a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)

    def wrap(self, fn: Callable) -> Callable[..., np.ndarray]:
        """``fn`` on numpy inputs and output (under ``jax.jit`` for JAX)."""
        if self.backend == "jax":
            fn = importlib.import_module("jax").jit(fn)
        return lambda *a: self.numpy(fn(*(self.asarray(v) for v in a)))


@contextlib.contextmanager
def precision(backend: str, dtype: str) -> Iterator[None]:
    """JAX's x64 flag set for ``dtype`` inside the block (and restored after it); nothing for the others."""
    if backend != "jax":
        yield
        return
    from deq_core.testing.fixtures import jax_x64

    with jax_x64(dtype == "float64"):
        yield
