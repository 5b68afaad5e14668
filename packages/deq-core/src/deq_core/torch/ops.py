"""The engine's array interface (:class:`deq_core.engine.Ops`) for PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from deq_core.engine.numpy_ops import NumpyOps

_DTYPES = {"int": torch.int64, "bool": torch.bool}
_NUMPY = NumpyOps()


def _to_numpy(x: Any) -> Any:
    return x.numpy() if isinstance(x, torch.Tensor) else x


def _from_numpy(x: Any) -> Any:
    return torch.from_numpy(x) if isinstance(x, np.ndarray) else x  # a numpy scalar stays one


def _tree(fn: Callable, x: Any) -> Any:
    """``fn`` applied to every leaf of nested tuples and dicts."""
    if isinstance(x, tuple):
        return tuple(_tree(fn, v) for v in x)
    if isinstance(x, dict):
        return {k: _tree(fn, v) for k, v in x.items()}
    return fn(x)


class TorchOps:
    """PyTorch primitives for :mod:`deq_core.engine`.

    The loop checks for termination (a host synchronisation) only every ``check_every`` iterations;
    between checks the engine's ``body`` is a no-op on finished samples, so extra iterations cost time
    but never change the answer. Linear algebra runs with autocast disabled, in the state's dtype.

    With ``compact=True``, ``f`` is evaluated only on the samples still active (``f(z, index)`` receives
    their batch indices), so converged samples stop costing evaluations. The active set is refreshed at
    the same cadence as the termination check, and may lag by up to ``check_every - 1`` iterations.
    """

    def __init__(
        self, differentiable: bool = False, check_every: int = 1, compact: bool = False, cpu: bool = True
    ):
        self.differentiable = differentiable
        self.check_every = check_every
        self.cpu = cpu
        self.compact = compact
        self._calls = 0
        self._index: torch.Tensor | None = None

    def zeros(self, shape, like, dtype="float"):
        return torch.zeros(shape, dtype=_DTYPES.get(dtype, like.dtype), device=like.device)

    def full(self, shape, value, like):
        return torch.full(shape, value, dtype=like.dtype, device=like.device)

    def arange(self, n, like):
        return torch.arange(n, device=like.device)

    def where(self, mask, a, b):
        return torch.where(mask, a, b)

    def select_rows(self, mask, a, b):
        if self.cpu:
            # On the CPU a uniform mask is cheap to detect and saves a full-size copy per iteration.
            if bool(mask.all()):
                return a
            if not bool(mask.any()):
                return b
        if isinstance(a, tuple):
            return tuple(self._select(mask, x, y) for x, y in zip(a, b, strict=True))
        return self._select(mask, a, b)

    @staticmethod
    def _select(mask, a, b):
        return torch.where(mask.reshape(-1, *[1] * (a.ndim - 1)), a, b)

    def norm(self, x, ord):
        order = 2 if ord == 2 else float("inf")
        if not torch.is_grad_enabled():
            return torch.linalg.vector_norm(x, ord=order, dim=1)
        with torch.no_grad():
            return torch.linalg.vector_norm(x, ord=order, dim=1)

    def dot(self, x, y):
        return (x * y).sum(1)

    def solve(self, a, b):
        with torch.autocast(a.device.type, enabled=False):
            return torch.linalg.solve(a, b)

    def transpose(self, a):
        return a.transpose(-1, -2)

    def sum(self, x, axis):
        return x.sum(axis)

    def max(self, x, axis):
        return x.amax(axis)

    def maximum(self, a, b):
        return torch.clamp_min(a, b) if isinstance(b, float | int) else torch.maximum(a, b)

    def minimum(self, a, b):
        return min(a, b) if isinstance(a, int) and isinstance(b, int) else torch.minimum(a, b)

    def abs(self, x):
        return x.abs()

    def sqrt(self, x):
        return x.sqrt()

    def isfinite(self, x):
        return torch.isfinite(x)

    def any(self, x):
        return x.any()

    def all(self, x):
        return x.all()

    def cond(self, pred, fast, general):
        return fast() if self.cpu and bool(pred()) else general()

    def tiny(self, like):
        return torch.finfo(like.dtype).tiny

    def set_slot(self, buffer, index, value):
        if self.differentiable:
            buffer = buffer.clone()
        buffer[:, index] = value
        return buffer

    def set_row(self, buffer, index, value):
        if self.differentiable:
            buffer = buffer.clone()
        buffer[index] = value
        return buffer

    def stop_gradient(self, x):
        return x.detach() if torch.is_grad_enabled() else x

    def per_sample(self, fn, *arrays):
        if not self.cpu:
            return fn(self, *arrays)
        # Host bookkeeping: numpy views of CPU tensors, each operation ~1 us where torch takes ~5 us.
        out = fn(_NUMPY, *(_tree(_to_numpy, a) if isinstance(a, dict) else _to_numpy(a) for a in arrays))
        return _tree(_from_numpy, out) if isinstance(out, dict) else _from_numpy(out)

    def evaluate(self, f, z, active):
        if not self.compact:
            return f(z)
        if self._calls % self.check_every == 0:
            index = active.nonzero()[:, 0]
            self._index = None if index.numel() == active.numel() else index
        self._calls += 1
        if self._index is None:
            return f(z)
        return z.index_put((self._index,), f(z[self._index], self._index))

    def while_loop(self, cond: Callable, body: Callable, state: Any, max_steps: int) -> Any:
        for step in range(max_steps):
            if step % self.check_every == 0 and not bool(cond(state)):
                break
            state = body(state)
        return state

    def fori_loop(self, lower, upper, body, state):
        for i in range(lower, upper):
            state = body(i, state)
        return state
