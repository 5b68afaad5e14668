"""Make the tests folder importable (shared helpers); the ``x64`` fixture for float64 JAX tests."""

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def x64():
    """JAX in float64 for this test, restored after it (nothing to do without JAX)."""
    if importlib.util.find_spec("jax") is None:
        yield
        return
    from deq_core.testing.fixtures import jax_x64

    with jax_x64():
        yield
