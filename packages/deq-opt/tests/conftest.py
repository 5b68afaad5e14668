"""Shared fixtures: the reference LP data beside the checkout (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
LP_DATA = REPO_ROOT.parent / "shared" / "data" / "lp"


@pytest.fixture(scope="session")
def lp_data() -> Path:
    """Path of ``../shared/data/lp``; skips the test if it is not there."""
    if not (LP_DATA / "instances.json").is_file():
        pytest.skip(f"reference LP data not found at {LP_DATA}")
    return LP_DATA


@pytest.fixture(scope="session")
def lp_meta(lp_data: Path) -> dict:
    """instances.json: status, size and objective per instance."""
    return json.loads((lp_data / "instances.json").read_text())
