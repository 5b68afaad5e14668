"""Backend-independent operator checks, run by test_torch_operators.py and test_jax_operators.py."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deq_imaging.operators import reference


def inner(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product in float64."""
    return float(np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)))


def random_pair(op: object, channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positive random x (2, C, H, W) and y (2, C, *output_shape), float64."""
    rng = np.random.default_rng(seed)
    x = rng.random((2, channels, *op.image_shape))  # type: ignore[attr-defined]
    y = rng.random((2, channels, *op.output_shape))  # type: ignore[attr-defined]
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
