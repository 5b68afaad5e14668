"""The array interface the solver algorithms are written against.

Arrays are batched and flattened: ``z`` has shape ``(batch, n)``. Arithmetic operators (``+ - * / @``),
comparisons, ``&``/``|``/``~``, ``.shape`` and ``.reshape`` are used directly, as both frameworks share
them; everything that differs between frameworks goes through an ``Ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Array = Any


class Ops(Protocol):
    """Framework primitives used by :mod:`deq_core.engine`; one implementation per backend."""

    differentiable: bool
    """True when the loop must stay differentiable (``Unroll``); in-place updates are then forbidden."""

    def zeros(self, shape: tuple[int, ...], like: Array, dtype: str = "float") -> Array:
        """Zeros on ``like``'s device; ``dtype`` is ``"float"`` (``like``'s), ``"int"`` or ``"bool"``."""

    def full(self, shape: tuple[int, ...], value: float, like: Array) -> Array:
        """An array filled with ``value``, with ``like``'s float dtype and device."""

    def arange(self, n: int, like: Array) -> Array:
        """``0, 1, ..., n-1`` as integers on ``like``'s device."""

    def where(self, mask: Array, a: Array | float, b: Array | float) -> Array:
        """Elementwise ``a if mask else b`` with numpy broadcasting (scalars allowed for ``a``/``b``)."""

    def select_rows(self, mask: Array, a: Any, b: Any) -> Any:
        """Row ``i`` of ``a`` where ``mask[i]`` (shape ``(batch,)``) holds, else row ``i`` of ``b``.

        ``a`` and ``b`` are arrays with a leading batch axis, or tuples of them (selected alike). A backend
        may return ``a`` or ``b`` itself when the mask is uniform; callers never mutate the result.
        """

    def norm(self, x: Array, ord: int | str) -> Array:
        """Per-sample norm of ``x`` (shape ``(batch, n)``), ``ord`` 2 or ``"inf"``; never differentiated."""

    def dot(self, x: Array, y: Array) -> Array:
        """Per-sample inner product of two ``(batch, n)`` arrays."""

    def solve(self, a: Array, b: Array) -> Array:
        """Batched linear solve ``a x = b``, ``a`` of shape ``(batch, m, m)`` and ``b`` of ``(batch, m)``."""

    def transpose(self, a: Array) -> Array:
        """Swap the last two axes."""

    def sum(self, x: Array, axis: int) -> Array:
        """Sum over ``axis``."""

    def max(self, x: Array, axis: int) -> Array:
        """Maximum over ``axis``."""

    def maximum(self, a: Array, b: Array | float) -> Array:
        """Elementwise maximum."""

    def minimum(self, a: Array, b: Array | int) -> Array:
        """Elementwise minimum (also of plain integers)."""

    def abs(self, x: Array) -> Array:
        """Elementwise absolute value."""

    def sqrt(self, x: Array) -> Array:
        """Elementwise square root."""

    def isfinite(self, x: Array) -> Array:
        """Elementwise finiteness test."""

    def any(self, x: Array) -> Array:
        """Whether any element of a boolean array holds."""

    def all(self, x: Array) -> Array:
        """Whether every element of a boolean array holds."""

    def cond(self, pred: Callable[[], Any], fast: Callable[[], Any], general: Callable[[], Any]) -> Any:
        """``fast()`` when the backend checks ``pred()`` and it holds, else ``general()``.

        ``fast`` must return what ``general`` would in that case; a backend for which the check costs more
        than it saves (a device sync, or a compiled loop that fuses everything anyway) runs ``general``.
        """

    def per_sample(self, fn: Callable[..., Any], *arrays: Any) -> Any:
        """``fn(xp, *arrays)`` for per-sample ``(batch,)`` arrays (in nested tuples/dicts), where ``xp`` is
        the ``Ops`` to compute with: a backend may run it on the host (PyTorch on the CPU uses numpy) and
        convert the results back."""

    def evaluate(self, f: Callable[..., Array], z: Array, active: Array) -> Array:
        """``f(z)``; a backend may evaluate only the rows where ``active`` holds (the rest are ignored)."""

    def tiny(self, like: Array) -> float:
        """The smallest positive normal number of ``like``'s dtype."""

    def set_slot(self, buffer: Array, index: Array | int, value: Array) -> Array:
        """``buffer`` with ``buffer[:, index] = value`` (functional; in place when allowed)."""

    def set_row(self, buffer: Array, index: Array | int, value: Array) -> Array:
        """``buffer`` with ``buffer[index] = value`` (functional; in place when allowed)."""

    def stop_gradient(self, x: Array) -> Array:
        """``x`` cut from differentiation."""

    def while_loop(
        self, cond: Callable[[Any], Any], body: Callable[[Any], Any], state: Any, max_steps: int
    ) -> Any:
        """Run ``state = body(state)`` while ``cond(state)``, at most ``max_steps`` times.

        ``body`` must leave a finished state unchanged, so a backend may run it a few extra times
        (to avoid synchronising with the device) or a fixed number of times (to stay differentiable).
        """

    def fori_loop(self, lower: int, upper: int, body: Callable[[Any, Any], Any], state: Any) -> Any:
        """Run ``state = body(i, state)`` for ``i`` in ``range(lower, upper)``."""
