"""Backend-free shape checks shared by the numpy, torch and JAX operators."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any


def check_batch_shape(shape: Sequence[int], expected_hw: tuple[int, int], what: str) -> None:
    """Raise ValueError unless ``shape`` is (N, C, H, W) with (H, W) == ``expected_hw``."""
    shape = tuple(int(s) for s in shape)
    h, w = expected_hw
    if len(shape) != 4 or shape[2:] != (h, w):
        raise ValueError(f"{what}: expected shape (N, C, {h}, {w}), got {shape}")
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{what}: expected shape (N, C, {h}, {w}) with N, C >= 1, got {shape}")


def check_float_dtype(dtype_name: str, what: str) -> None:
    """Raise ValueError unless ``dtype_name`` names float32 or float64."""
    name = dtype_name.rsplit(".", 1)[-1]
    if name not in ("float32", "float64"):
        raise ValueError(f"{what}: expected dtype float32 or float64, got {dtype_name}")


def _is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value: Any, what: str, minimum: int = 1) -> int:
    """``value`` as an int; a ValueError naming ``what`` unless it is an integer (no bool) >= ``minimum``."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{what}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    """An int or a length-2 sequence as a validated (H, W) pair of positive ints (no bool, no float)."""
    items: tuple[Any, ...] = ()
    if _is_int(value):
        items = (value, value)
    elif isinstance(value, Iterable) and not isinstance(value, str) and getattr(value, "ndim", 1) == 1:
        items = tuple(value)
    if len(items) != 2 or not all(_is_int(v) and v >= 1 for v in items):
        raise ValueError(f"{what}: expected a positive int or a pair (H, W) of positive ints, got {value!r}")
    return int(items[0]), int(items[1])


def check_images(x: Any, what: str) -> Any:
    """Raise ValueError unless ``x`` is an array of shape (N, C, H, W); return it."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"{what}: expected an array of shape (N, C, H, W), got {getattr(x, 'shape', x)}")
    return x
