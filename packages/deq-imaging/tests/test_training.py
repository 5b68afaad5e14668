"""Training: the warm-started recipe through deq-core's fit resumes exactly (float64, smoke-sized)."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from deq_imaging.backends import load
from deq_imaging.datasets.problem import make_problem
from deq_imaging.models.config import default_config, parse_config
from deq_imaging.models.training import bank as bank_module
from deq_imaging.models.training.bank import PatchBank
from deq_imaging.models.training.recipe import train_implicit

SMALL = dict(
    image_size=16, patch_size=12, n_val=1, n_test=1, features=4, depth=2, kernel_size=5, bank_size=4,
    batch=2, refresh=1, refresh_every=1, steps=5, warm_iters=2, max_iter=2, budgets=(1, 4), lr=1e-2,
)  # fmt: skip


class Interrupted(Exception):
    """Stands for a run killed in the middle of training."""


@pytest.fixture(params=["torch", "jax"])
def backend_float64(request: pytest.FixtureRequest):
    """The float64 adapter of each installed backend (JAX with x64 on for the test only)."""
    if importlib.util.find_spec(request.param) is None:
        pytest.skip(f"{request.param} not installed")
    if request.param == "torch":
        yield load("torch", "cpu", "float64")
        return
    from deq_core.testing.fixtures import jax_x64

    with jax_x64():
        backend = load("jax", "cpu", "float64")
        with backend.scope():
            yield backend


def _train(backend, problem, cfg, checkpoint_dir: str) -> tuple[list[np.ndarray], dict]:
    cell = backend.cells(problem.spec, cfg, 0, 1)[0]
    model = backend.place(backend.models.ImplicitNet(cell, solver="picard", backward="jfb", max_iter=2))
    model, log = train_implicit(backend, model, problem, cfg, 0, checkpoint_dir, checkpoint_every=1)
    if backend.name == "torch":
        return [p.detach().numpy() for p in model.parameters()], log
    import equinox as eqx
    import jax

    return [np.asarray(a) for a in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))], log


def test_resumed_training_equals_uninterrupted(backend_float64, tmp_path, monkeypatch):
    """A run killed before step 3 and resumed from its checkpoints (model, optimizer, schedule, RNG and the
    warm-start cache; the patch bank replays its refreshes) ends with the weights of an uninterrupted run."""
    cfg = dataclasses.replace(parse_config(default_config("deblur", True)), **SMALL)
    problem = make_problem("deblur", cfg, 0)
    straight, log = _train(backend_float64, problem, cfg, str(tmp_path / "straight"))
    assert log["max_age"] > 0  # some entry was revisited: its cached iterate mattered

    visit = PatchBank.visit

    def killed_at_step_3(self, step, *args):
        if step == 3:
            raise Interrupted
        return visit(self, step, *args)

    monkeypatch.setattr(bank_module.PatchBank, "visit", killed_at_step_3)
    with pytest.raises(Interrupted):
        _train(backend_float64, problem, cfg, str(tmp_path / "resumed"))
    monkeypatch.setattr(bank_module.PatchBank, "visit", visit)
    resumed, log = _train(backend_float64, problem, cfg, str(tmp_path / "resumed"))
    assert [step for step, _ in log["losses"]] == [4, 5]  # the second call ran steps 4 and 5 only
    assert all(a.dtype == np.float64 for a in resumed)
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_bank_replays_skipped_refreshes():
    """A bank that starts at step 3 holds the patches of one that drew steps 0, 1 and 2."""
    cfg = dataclasses.replace(parse_config(default_config("deblur", True)), **SMALL)
    problem = make_problem("deblur", cfg, 0)
    walked, jumped = PatchBank(problem, 4, 12, 3), PatchBank(problem, 4, 12, 3)
    for step in range(4):
        expected = walked.visit(step, 0, 2, 1, 1)
    assert all(np.array_equal(a, b) for a, b in zip(expected, jumped.visit(3, 0, 2, 1, 1), strict=True))
    assert np.array_equal(walked.x, jumped.x) and np.array_equal(walked.y, jumped.y)
    with pytest.raises(ValueError, match="before step 4"):
        jumped.visit(2, 0, 2, 1, 1)
