"""Fixtures: ``backend`` (every installed framework runs the conformance suite) and the toy domain plugin."""

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from deq_core import domains
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


TOY_SRC = Path(__file__).resolve().parent / "toydomain" / "src"


@pytest.fixture
def toy_entry_points(monkeypatch):
    """Make ``entry_points(group="deq.domains")`` list the toy domain and a broken one."""
    monkeypatch.syspath_prepend(str(TOY_SRC))
    real = importlib.metadata.entry_points
    extra = importlib.metadata.EntryPoints(
        [
            importlib.metadata.EntryPoint("toy", "deq_toydomain.plugin:domain", domains.GROUP),
            importlib.metadata.EntryPoint("broken", "deq_toydomain.no_such_module:domain", domains.GROUP),
        ]
    )

    def entry_points(**params):
        if params.get("group") == domains.GROUP:
            return importlib.metadata.EntryPoints([*real(**params), *extra])
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
