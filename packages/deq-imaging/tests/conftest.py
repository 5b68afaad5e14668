"""Shared fixtures: operator cases built alike in every backend, each backend's arrays, the data path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from imaging_checks import BACKENDS, Arrays, precision

from deq_core.testing.fixtures import shared_data
from deq_imaging.operators import box_mask, gaussian_kernel, motion_blur_kernel, random_pixel_mask

# name -> (class name, constructor args, channels); the same geometry for numpy, torch and JAX.
OPERATOR_CASES = {
    "identity": ("Identity", ((12, 10),), 2),
    "circular_gaussian": ("CircularBlur", (gaussian_kernel(5, 1.2), (12, 10)), 2),
    "circular_motion": ("CircularBlur", (motion_blur_kernel(7, seed=2), (16, 14)), 1),
    "padded_valid": ("PaddedBlur", (motion_blur_kernel(7, seed=3), (16, 14), "valid"), 2),
    "padded_same_even": ("PaddedBlur", (gaussian_kernel(4, 1.0), (16, 14), "same"), 1),
    "inpaint_pixels": ("Inpainting", (random_pixel_mask((12, 10), 0.5, seed=0),), 2),
    "inpaint_boxes": ("Inpainting", (box_mask((12, 10), 4, num_boxes=2, seed=1),), 3),
    "radon_circle": ("Radon", (16, np.linspace(0, 180, 12, endpoint=False)), 2),
    "radon_full": ("Radon", (15, np.arange(0, 180, 7.5), False), 1),
}


@pytest.fixture(params=sorted(OPERATOR_CASES))
def operator_case(request: pytest.FixtureRequest) -> tuple[str, str, tuple, int]:
    """(case name, class name, constructor args, channel count) of one operator case."""
    cls, args, channels = OPERATOR_CASES[request.param]
    return request.param, cls, args, channels


@pytest.fixture(
    params=[(backend, dtype) for backend in BACKENDS for dtype in ("float32", "float64")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def arrays(request: pytest.FixtureRequest):
    """Each installed backend in float32 and float64 (JAX's x64 flag set for the test and restored)."""
    backend, dtype = request.param
    if backend != "numpy" and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} not installed")
    with precision(backend, dtype):
        yield Arrays(backend, dtype)


@pytest.fixture
def data_images() -> Path:
    """The reference benchmark images folder (../shared/data/images): fails in CI, skips elsewhere."""
    return shared_data("images")
