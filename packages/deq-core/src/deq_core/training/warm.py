"""``WarmStartCache``: each training sample's latest fixed-point iterate, so its next visit starts there.

A DEQ trained with warm starts solves a few iterations per visit from where the sample's previous visit
stopped, tracking the moving fixed point cheaply. The cache holds one row per sample index (a backend array
of shape ``(size, *shape)``, allocated at the first store), which rows are known, and how many visits each
has had since it was last reset (its ``age``). A cached row that is not finite is never used: the next visit
starts from ``start(data)``, decided on the device without a host synchronisation.
:func:`deq_core.torch.train.fit` and :func:`deq_core.jax.train.fit` read and write it around every step
(``fit(..., warm=cache)``) and save it with each checkpoint, so a resumed run continues from the same
iterates.

Backend-free: the array work goes through a small :class:`Rows` adapter that each trainer binds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from deq_core.errors import ConfigError


class Rows(Protocol):
    """What a backend does for the cache: allocate, gather, scatter and select rows (on the device)."""

    def zeros(self, size: int, like: Any) -> Any:
        """A zero array of shape ``(size, *like.shape[1:])`` with ``like``'s dtype and device."""

    def take(self, values: Any, index: np.ndarray) -> Any:
        """``values[index]``."""

    def scatter(self, values: Any, index: np.ndarray, rows: Any) -> Any:
        """``values`` with ``values[index] = rows`` (gradient-free), returned."""

    def select(self, known: np.ndarray, cached: Any, fresh: Any) -> Any:
        """Row ``i`` of ``cached`` where ``known[i]`` and that row is finite, else row ``i`` of ``fresh``."""


class WarmStartCache:
    """Per-sample iterates keyed by sample index in ``[0, size)``; unknown rows start from ``start(data)``."""

    def __init__(self, size: int, start: Callable[[Any], Any]) -> None:
        """``size`` samples; ``start(data)`` gives a batch's starting iterates where none is cached."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"WarmStartCache size must be a positive int, got {size!r}")
        if not callable(start):
            raise ConfigError(f"WarmStartCache start must be callable (data -> iterates), got {start!r}")
        self.size, self.start = size, start
        self.values: Any = None
        self.known = np.zeros(size, dtype=bool)
        self.age = np.zeros(size, dtype=np.int64)
        self._rows: Rows | None = None

    def bind(self, rows: Rows) -> None:
        """Use the backend adapter ``rows`` for the array work (the trainer calls this)."""
        self._rows = rows

    def indices(self, indices: Any) -> np.ndarray:
        """``indices`` as a 1-D int64 numpy array, checked against the cache's size."""
        index = np.asarray(indices)
        if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(
                f"warm-start batch indices must be a 1-D integer array, got shape {index.shape} "
                f"dtype {index.dtype}"
            )
        if index.size and (index.min() < 0 or index.max() >= self.size):
            raise ValueError(
                f"warm-start batch index out of range [0, {self.size}): min {index.min()}, max {index.max()}"
            )
        return index.astype(np.int64)

    def get(self, indices: Any, data: Any) -> Any:
        """The batch's starting iterates: the cached row where known and finite, ``start(data)`` elsewhere."""
        index = self.indices(indices)
        fresh = self.start(data)
        known = self.known[index]
        if not known.any():
            return fresh
        rows = self._require_rows()
        return rows.select(known, rows.take(self.values, index), fresh)

    def put(self, indices: Any, z: Any) -> None:
        """Store the batch's new iterates ``z`` at ``indices`` (a row that is not finite is never used)."""
        index = self.indices(indices)
        rows = self._require_rows()
        if self.values is None:
            self.values = rows.zeros(self.size, z)
        self.values = rows.scatter(self.values, index, z)
        self.known[index] = True
        self.age[index] += 1

    def reset(self, indices: Any) -> None:
        """Forget the rows ``indices``: their next visit starts from ``start(data)`` again."""
        index = self.indices(indices)
        self.known[index] = False
        self.age[index] = 0

    def state(self) -> dict[str, Any]:
        """What a checkpoint saves: ``values`` (a backend array, or None), ``known`` and ``age`` (numpy)."""
        return {"values": self.values, "known": self.known.copy(), "age": self.age.copy()}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state` returned (``values`` already a backend array, or None)."""
        known, age = np.asarray(state["known"], dtype=bool), np.asarray(state["age"], dtype=np.int64)
        if known.shape != (self.size,) or age.shape != (self.size,):
            raise ValueError(f"warm-start state is for {known.shape[0]} samples, this cache has {self.size}")
        values = state["values"]
        if values is not None and values.shape[0] != self.size:
            raise ValueError(f"warm-start values have {values.shape[0]} rows, this cache has {self.size}")
        self.values, self.known, self.age = values, known, age

    def _require_rows(self) -> Rows:
        if self._rows is None:
            raise RuntimeError("WarmStartCache is not bound to a backend: pass it to fit(..., warm=cache)")
        return self._rows
