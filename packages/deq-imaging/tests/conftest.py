"""Shared fixtures: operator cases built identically in every backend, and the reference-data path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deq_imaging.operators import box_mask, gaussian_kernel, motion_blur_kernel, random_pixel_mask

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_IMAGES = REPO_ROOT.parent / "shared" / "data" / "images"

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


@pytest.fixture
def data_images() -> Path:
    """The reference benchmark images folder (../shared/data/images), skipping the test if absent."""
    if not DATA_IMAGES.is_dir():
        pytest.skip(f"reference data not found at {DATA_IMAGES}")
    return DATA_IMAGES
