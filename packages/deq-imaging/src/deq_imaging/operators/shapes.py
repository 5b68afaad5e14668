"""Backend-free shape checks shared by the numpy, torch and JAX operators."""

from __future__ import annotations

from collections.abc import Sequence
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


def pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    """Turn an int or a length-2 sequence into a validated (H, W) pair of positive ints."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{what}: expected a positive int or a pair (H, W), got {value}")
    return value  # type: ignore[return-value]


def check_images(x: Any, what: str) -> Any:
    """Raise ValueError unless ``x`` is an array of shape (N, C, H, W); return it."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"{what}: expected an array of shape (N, C, H, W), got {getattr(x, 'shape', x)}")
    return x
