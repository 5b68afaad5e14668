"""A numpy implementation of the engine's :class:`~deq_core.engine.Ops`.

It is the reference the backends are tested against, and PyTorch runs its per-sample bookkeeping on it
for CPU tensors (numpy is several times cheaper than torch on arrays of a batch's size).
"""

from __future__ import annotations

import numpy as np

_DTYPES = {"int": np.int64, "bool": np.bool_}


class NumpyOps:
    """Numpy primitives for :mod:`deq_core.engine` (no autodiff)."""

    differentiable = False

    def zeros(self, shape, like, dtype="float"):
        return np.zeros(shape, dtype=_DTYPES.get(dtype, like.dtype))

    def full(self, shape, value, like):
        return np.full(shape, value, dtype=like.dtype)

    def arange(self, n, like):
        return np.arange(n)

    def where(self, mask, a, b):
        return np.where(mask, a, b)

    def select_rows(self, mask, a, b):
        select = lambda x, y: np.where(mask.reshape(-1, *[1] * (x.ndim - 1)), x, y)
        return tuple(map(select, a, b)) if isinstance(a, tuple) else select(a, b)

    def norm(self, x, ord):
        return np.linalg.norm(x, ord=2 if ord == 2 else np.inf, axis=1)

    def dot(self, x, y):
        return np.sum(x * y, axis=1)

    def solve(self, a, b):
        return np.linalg.solve(a, b[..., None])[..., 0]

    def transpose(self, a):
        return np.swapaxes(a, -1, -2)

    def sum(self, x, axis):
        return np.sum(x, axis=axis)

    def max(self, x, axis):
        return np.max(x, axis=axis)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def minimum(self, a, b):
        return np.minimum(a, b)

    def abs(self, x):
        return np.abs(x)

    def sqrt(self, x):
        return np.sqrt(x)

    def isfinite(self, x):
        return np.isfinite(x)

    def any(self, x):
        return np.any(x)

    def all(self, x):
        return np.all(x)

    def cond(self, pred, fast, general):
        return fast() if pred() else general()

    def tiny(self, like):
        return float(np.finfo(like.dtype).tiny)

    def set_slot(self, buffer, index, value):
        buffer = buffer.copy()
        buffer[:, index] = value
        return buffer

    def set_row(self, buffer, index, value):
        buffer = buffer.copy()
        buffer[index] = value
        return buffer

    def stop_gradient(self, x):
        return x

    def evaluate(self, f, z, active):
        return f(z)

    def per_sample(self, fn, *arrays):
        return fn(self, *arrays)

    def while_loop(self, cond, body, state, max_steps):
        for _ in range(max_steps):
            if not cond(state):
                break
            state = body(state)
        return state

    def fori_loop(self, lower, upper, body, state):
        for i in range(lower, upper):
            state = body(i, state)
        return state
