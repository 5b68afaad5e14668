"""Config mistakes raise one error type, ``ConfigError`` (a ``ValueError``), whose message names the field.

Also: solve options as one value, built from a plain mapping (a JSON config) and written back, and handed
whole to a ``DEQ`` of each installed backend.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from deq_core import GMRES, Anderson, Implicit, Phantom, Picard, SolveOptions, Stop
from deq_core.analysis import check_budgets, geometric_budgets
from deq_core.config import from_dict, solve_options, solve_options_from_dict, solve_options_to_dict
from deq_core.domains import Domain, check_domain
from deq_core.errors import ConfigError
from deq_core.training import TrainConfig

INSTALLED = [name for name in ("torch", "jax") if importlib.util.find_spec(name) is not None]

NESTED = {
    "solver": {"name": "anderson", "memory": 8},
    "backward": {"name": "implicit", "solver": {"name": "gmres", "restart": 10}, "tol": 1e-6},
    "tol": 1e-4,
    "max_iter": 30,
}


def test_solve_options_from_a_nested_mapping_and_back():
    options = solve_options_from_dict(NESTED)
    assert options == SolveOptions(
        Anderson(memory=8), Implicit(GMRES(10), tol=1e-6), Stop(rtol=1e-4), max_iter=30
    )
    assert solve_options_from_dict({"solver": "picard", "backward": "jfb"}) == solve_options("picard", "jfb")
    written = json.loads(json.dumps(solve_options_to_dict(options)))  # survives JSON
    assert written["solver"] == {"name": "anderson", "memory": 8, "ridge": 1e-4, "damping": 1.0}
    assert solve_options_from_dict(written) == options
    phantom = solve_options("picard", Phantom(steps=3), stop=Stop(rtol=0, atol=1e-6, norm="inf"))
    assert solve_options_from_dict(solve_options_to_dict(phantom)) == phantom


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"solvr": "anderson"}, r"unknown solve option\(s\) \['solvr'\]"),
        ({"solver": {"name": "andersen"}}, "solver.name must be one of"),
        ({"solver": {"memory": 3}}, "solver.name must be one of"),
        ({"solver": {"name": "anderson", "memroy": 3}}, r"solver: Anderson: unknown field\(s\) \['memroy'\]"),
        ({"backward": {"name": "implicit", "solver": {"name": "gmres", "restart": 0}}}, "GMRES.restart"),
        ({"backward": {"name": "phantom", "tau": 2.0}}, "backward: Phantom.tau"),
        ({"stop": {"rtl": 1e-3}}, r"stop: Stop: unknown field\(s\) \['rtl'\]"),
        ({"stop": {"rtol": -1.0}}, "Stop.rtol"),
        ({"max_iter": "many"}, "max_iter must be an integer"),
        ({"solver": 5}, "solver must be a name or one of"),
        (["anderson"], "solve options must be a mapping"),
    ],
)
def test_solve_options_from_dict_names_the_bad_key(values, message):
    with pytest.raises(ConfigError, match=message):
        solve_options_from_dict(values)


def test_solve_options_normalises_names_and_refuses_other_types():
    assert SolveOptions("picard", "jfb", "abs", 10) == solve_options("picard", "jfb", stop="abs", max_iter=10)
    with pytest.raises(ConfigError, match="solver must be a name"):
        SolveOptions(3, "jfb", "rel", 10)
    with pytest.raises(ConfigError, match="stop must be 'rel', 'abs' or a Stop"):
        SolveOptions(Picard(), "jfb", None, 10)


def test_from_dict_names_unknown_and_missing_fields():
    with pytest.raises(ConfigError, match=r"TrainConfig: missing field\(s\) \['steps'\]"):
        from_dict(TrainConfig, {"seed": 1})
    with pytest.raises(ConfigError, match="TrainConfig needs a mapping"):
        from_dict(TrainConfig, [("steps", 1)])
    assert from_dict(Anderson, {}) == Anderson()


def test_analysis_and_domain_mistakes_are_config_errors(monkeypatch):
    for call, message in [
        (lambda: check_budgets([1, 1]), "strictly increasing"),
        (lambda: geometric_budgets(0, 3), "max_iter must be an integer >= 1"),
        (lambda: Domain(name="x", tasks={}, default_config=dict, run=dict), "tasks must be a non-empty"),
        (lambda: check_domain(object()), "has no attribute 'name'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            call()
    monkeypatch.setenv("DEQ_SMOKE", "2")
    from deq_core.domains import smoke

    with pytest.raises(ConfigError, match="DEQ_SMOKE must be 0 or 1"):
        smoke()


@pytest.mark.parametrize("backend", INSTALLED)
def test_deq_takes_solve_options_whole(backend):
    options = solve_options_from_dict({"solver": "picard", "tol": 1e-10, "max_iter": 200})
    W = 0.3 * np.eye(2)
    x = np.ones((3, 2))
    if backend == "torch":
        import torch

        from deq_core.torch import DEQ

        cell = lambda z, x: torch.tanh(z @ torch.as_tensor(W) + x)  # noqa: E731
        deq = DEQ(cell, options)
        z, _ = deq(torch.as_tensor(x))
        z = z.detach().numpy()
    else:
        import jax.numpy as jnp

        from deq_core.jax import DEQ

        cell = lambda z, x: jnp.tanh(z @ jnp.asarray(W, z.dtype) + x)  # noqa: E731
        deq = DEQ(cell, options)
        z, _ = deq(jnp.asarray(x, jnp.float32))
        z = np.asarray(z, np.float64)
    assert deq.options is options
    np.testing.assert_allclose(z, np.tanh(z @ W + x), atol=1e-5)
    with pytest.raises(ConfigError, match="not both"):
        DEQ(cell, options, max_iter=5)
    with pytest.raises(ConfigError, match="must be a SolveOptions"):
        DEQ(cell, {"solver": "picard"})
