"""Training through deq-core's ``fit``: a run interrupted and resumed from its checkpoint (weights, optimizer,
schedule, sampler and the warm-start cache of each LP's equilibrium) ends where an uninterrupted run does."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from deq_core.testing.fixtures import jax_x64
from deq_opt.datasets.labels import label
from deq_opt.models import ModelSpec, featurize, fit_scales
from deq_opt.models.spec import deq_solve
from deq_opt.models.training import TrainRun, train_config

STEPS, CRASH_AT = 5, 3


def _crashing(real_fit: Callable[..., Any], at: int) -> Callable[..., Any]:
    """``fit`` whose batch source raises KeyboardInterrupt when step ``at`` is drawn (a crash mid-run)."""

    def crash() -> None:
        raise KeyboardInterrupt(f"simulated crash at step {at}")

    def fit(model: Any, optimizer: Any, loss: Any, batches: Any, config: Any, **kw: Any) -> Any:
        if callable(batches):
            sample = lambda step, generator: crash() if step == at else batches(step, generator)  # noqa: E731
            return real_fit(model, optimizer, loss, sample, config, **kw)

        def items() -> Iterator[Any]:
            for step, batch in enumerate(batches):
                if step == at:
                    crash()
                yield batch

        return real_fit(model, optimizer, loss, items(), config, **kw)

    return fit


def _float64_model(backend: str, spec: ModelSpec) -> Any:
    """A fresh learned PDHG (the same initial weights every call) in float64."""
    mod = importlib.import_module(f"deq_opt.models.{backend}")
    if backend == "torch":
        import torch

        torch.manual_seed(0)
        return mod.build_models(spec, 9, 4)["pdhg"].double()
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    model = mod.build_models(spec, 9, 4, seed=0)["pdhg"]
    return jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, model)


def _weights(backend: str, model: Any) -> list[np.ndarray]:
    """The model's parameters as numpy arrays."""
    if backend == "torch":
        return [p.detach().numpy() for p in model.parameters()]
    import equinox as eqx
    import jax

    return [np.asarray(leaf) for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))]


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_interrupted_training_resumes_to_the_same_weights(backend: str, tmp_path, monkeypatch) -> None:
    """float64, warm-started: crash after 3 of 5 steps, resume from the checkpoint, compare with 5 steps."""
    pytest.importorskip(backend)
    mod = importlib.import_module(f"deq_opt.models.{backend}")
    data = label("random_lp", {"m": 4, "n": 9, "nnz": 16}, 6, 0, workers=1, cache=tmp_path / "labels")
    scales = fit_scales(data.lps, data.x, data.y)
    graphs, x, y = featurize(data.lps, scales), data.x / scales.x, data.y / scales.y
    spec = ModelSpec(hidden=4, solve=deq_solve(train_iter=3))
    directory = str(tmp_path / "checkpoints")
    config = train_config(STEPS, 0, progress=False, checkpoint_dir=directory, checkpoint_every=1)
    resumable = TrainRun(config, batch=4, lr=1e-2, warm_start=True)
    uninterrupted = dataclasses.replace(resumable, config=train_config(STEPS, 0, progress=False))
    with jax_x64() if backend == "jax" else contextlib.nullcontext():
        initial = _weights(backend, _float64_model(backend, spec))
        reference, _ = mod.train(_float64_model(backend, spec), graphs, x, y, uninterrupted, "cpu")
        with monkeypatch.context() as patch:
            patch.setattr(mod, "fit", _crashing(mod.fit, CRASH_AT))
            with pytest.raises(KeyboardInterrupt, match="simulated crash"):
                mod.train(_float64_model(backend, spec), graphs, x, y, resumable, "cpu")
        resumed, _ = mod.train(_float64_model(backend, spec), graphs, x, y, resumable, "cpu")
        expected, got = _weights(backend, reference), _weights(backend, resumed)
    assert all(w.dtype == np.float64 for w in got)
    assert not all(np.array_equal(a, b) for a, b in zip(expected, initial, strict=True)), "nothing trained"
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(b, a)
