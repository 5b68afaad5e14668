"""The ``backend`` fixture: every installed framework runs the conformance suite."""

import importlib.util

import pytest

from deq_core.testing.backends import BACKENDS
from deq_core.testing.fixtures import jax_x64

INSTALLED = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]


@pytest.fixture(params=INSTALLED, scope="module")
def backend(request):
    """An adapter for one installed backend; JAX in float64 within a module, then restored."""
    if request.param == "jax":
        with jax_x64():
            yield BACKENDS["jax"]()
    else:
        yield BACKENDS[request.param]()
