"""What a solve returns: the fixed point, per-sample statistics, and a result code."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Array = TypeVar("Array")

__all__ = ["Result", "Stats", "Solution"]


class Result(enum.IntEnum):
    """Outcome of a solve, the worst over the batch (higher is worse)."""

    SUCCESSFUL = 0
    MAX_STEPS_REACHED = 1
    NONFINITE = 2

    @classmethod
    def describe(cls, code: int) -> str:
        """A sentence for ``code``, suitable for an error message."""
        return {
            cls.SUCCESSFUL: "converged",
            cls.MAX_STEPS_REACHED: "did not reach the tolerance within max_iter iterations",
            cls.NONFINITE: "produced a non-finite residual (the iteration diverged)",
        }[cls(int(code))]


@dataclass(frozen=True)
class Stats(Generic[Array]):
    """Per-sample statistics of a solve; every field but ``trace`` has shape ``(batch,)``.

    ``nstep`` counts evaluations of ``f`` spent on the sample; ``abs_residual`` and ``rel_residual`` are
    those of the returned iterate; ``trace`` has shape ``(max_iter, batch)`` and holds the stopping-rule
    residual of each iteration, NaN after the sample stopped.
    """

    nstep: Array
    abs_residual: Array
    rel_residual: Array
    converged: Array
    trace: Array


@dataclass(frozen=True)
class Solution(Generic[Array]):
    """The fixed point ``value`` (shaped like ``z0``), its :class:`Stats`, and the batch's :class:`Result`.

    ``result`` is a :class:`Result` in PyTorch and an integer array in JAX (comparable to ``Result``
    members either way).
    """

    value: Array
    stats: Stats[Array]
    result: Any
