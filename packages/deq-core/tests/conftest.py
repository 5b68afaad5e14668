"""The ``backend`` fixture: every installed framework runs the conformance suite."""

import importlib.util

import pytest

from deq_core.testing.backends import BACKENDS

INSTALLED = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]


@pytest.fixture(params=INSTALLED, scope="session")
def backend(request):
    """An adapter for one installed backend."""
    return BACKENDS[request.param]()
