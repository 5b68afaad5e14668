"""What a solve returns: the fixed point, per-sample statistics, and a result code."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Array = TypeVar("Array")

__all__ = ["AdjointStats", "Result", "Stats", "Solution"]


class Result(enum.IntEnum):
    """Outcome of a solve, per sample and for the batch (the worst over its samples; higher is worse)."""

    SUCCESSFUL = 0
    MAX_STEPS_REACHED = 1
    NONFINITE = 2
    DIVERGED = 3

    @classmethod
    def describe(cls, code: int) -> str:
        """A sentence for ``code``, suitable for an error message."""
        return {
            cls.SUCCESSFUL: "converged",
            cls.MAX_STEPS_REACHED: "did not reach the tolerance within max_iter iterations",
            cls.NONFINITE: "produced a non-finite value (NaN or inf in f(z), its residual or its norm)",
            cls.DIVERGED: "diverged (its residual grew far above its lowest value and stayed there)",
        }[cls(int(code))]


@dataclass(frozen=True)
class Stats(Generic[Array]):
    """Per-sample statistics of a solve; every field but ``trace`` has shape ``(batch,)``.

    ``nstep`` counts the evaluations of ``f`` spent on the sample. The returned value is ``f(z)`` for the
    sample's best measured iterate ``z`` (the one that met the stopping rule, else the one with the lowest
    residual), and ``abs_residual = ||f(z) - z||``, ``rel_residual = ||f(z) - z|| / ||f(z)||`` are that
    pair's. ``status`` holds each sample's :class:`Result` code and ``converged`` is ``status == 0``.
    ``trace`` is ``None`` unless the solve was asked for one (``trace=True``): then it has shape
    ``(max_iter, batch)`` and holds each iteration's absolute residual, NaN after the sample stopped.
    """

    nstep: Array
    abs_residual: Array
    rel_residual: Array
    converged: Array
    status: Array
    trace: Array | None = None


@dataclass(eq=False)
class AdjointStats(Generic[Array]):
    """The implicit backward's adjoint solve, recorded when the backward pass runs (fields ``None`` before).

    ``nstep``, ``residual`` (relative, of the adjoint system) and ``converged`` have shape ``(batch,)``.
    Under ``jax.jit`` the record is filled by a host callback and holds the latest call's values.
    """

    nstep: Array | None = None
    residual: Array | None = None
    converged: Array | None = None


@dataclass(frozen=True)
class Solution(Generic[Array]):
    """The fixed point ``value`` (shaped like ``z0``), its :class:`Stats`, and the batch's :class:`Result`.

    ``result`` is a :class:`Result` in PyTorch and an integer array in JAX (comparable to ``Result``
    members either way). ``adjoint`` records the implicit backward's adjoint solve once gradients have been
    taken (``None`` for the other backward modes).
    """

    value: Array
    stats: Stats[Array]
    result: Any
    adjoint: AdjointStats[Array] | None = None
