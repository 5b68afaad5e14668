"""Backend-free helpers of the Lipschitz estimators: input checks and the max/mean summary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deq_core.errors import ConfigError


def check_scales(scales: Sequence[float]) -> list[float]:
    """Return the perturbation ``scales`` as floats, or raise naming the first one that is not positive."""
    out = []
    for i, s in enumerate(scales):
        if (
            isinstance(s, bool)
            or not isinstance(s, int | float | np.floating)
            or not np.isfinite(s)
            or s <= 0
        ):
            raise ConfigError(f"scales[{i}] must be a finite number > 0, got {s!r}")
        out.append(float(s))
    if not out:
        raise ConfigError("scales must hold at least one perturbation size, got an empty list")
    return out


def direction_shape_problem(direction_shape: tuple, input_shape: tuple) -> str | None:
    """Why ``directions`` cannot perturb inputs of ``input_shape``, or None if they can.

    Directions are ``(k, *input_shape[1:])`` (each applied to every sample) or ``(k, *input_shape)``.
    """
    direction_shape, input_shape = tuple(direction_shape), tuple(input_shape)
    if (
        len(direction_shape) >= 1
        and direction_shape[0] >= 1
        and direction_shape[1:] in (input_shape[1:], input_shape)
    ):
        return None
    return (
        f"directions must have shape (k, *sample_shape) = (k, {', '.join(map(str, input_shape[1:]))}) "
        f"or (k, *input_shape) = (k, {', '.join(map(str, input_shape))}) with k >= 1, "
        f"got {direction_shape}"
    )


def summarize_ratios(ratios: np.ndarray) -> dict[str, float]:
    """``{"max", "mean"}`` of finite-difference ratios over every sample, direction and scale.

    A non-finite ratio (a diverged iteration) makes both summaries non-finite; the report stores them as null.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    if ratios.size == 0:
        raise ValueError("no finite-difference ratios to summarize (empty array)")
    if not np.all(np.isfinite(ratios)):
        return {"max": float("inf"), "mean": float("nan")}
    return {"max": float(ratios.max()), "mean": float(ratios.mean())}
