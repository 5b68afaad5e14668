"""Iteration budgets: the list of ``t`` at which the scaling analysis evaluates a model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from deq_core.errors import ConfigError


def check_budgets(budgets: Iterable[int]) -> list[int]:
    """Return ``budgets`` as a strictly increasing list of positive ints, or raise naming the bad entry."""
    out: list[int] = []
    for i, t in enumerate(budgets):
        if isinstance(t, bool) or not isinstance(t, int | np.integer) or t < 1:
            raise ConfigError(f"budgets[{i}] must be an integer >= 1, got {t!r}")
        if out and int(t) <= out[-1]:
            raise ConfigError(f"budgets must be strictly increasing: budgets[{i}]={t} follows {out[-1]}")
        out.append(int(t))
    if not out:
        raise ConfigError("budgets must hold at least one iteration count, got an empty list")
    return out


def geometric_budgets(max_iter: int, count: int) -> list[int]:
    """About ``count`` roughly log-spaced budgets from 1 to ``max_iter`` inclusive (duplicates dropped)."""
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ConfigError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"count must be an integer >= 1, got {count!r}")
    raw = np.geomspace(1, max_iter, num=count) if count > 1 else np.array([max_iter])
    return sorted({int(round(v)) for v in raw} | {max_iter})


def check_count(name: str, value: Any) -> int:
    """``value`` if it is an integer >= 1 (not a bool), else a ``ConfigError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return value
