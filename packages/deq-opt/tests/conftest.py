"""Shared fixtures: the reference LP data beside the checkout (absent: a failure in CI, a skip elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deq_core.testing.fixtures import shared_data


@pytest.fixture(scope="session")
def lp_data() -> Path:
    """Path of ``../shared/data/lp`` (see :func:`deq_core.testing.fixtures.shared_data`)."""
    return shared_data("lp", marker="instances.json")


@pytest.fixture(scope="session")
def lp_meta(lp_data: Path) -> dict:
    """instances.json: status, size and objective per instance (never empty)."""
    meta = json.loads((lp_data / "instances.json").read_text())
    assert meta, f"{lp_data / 'instances.json'} lists no instances"
    return meta
