"""The JAX adapter of the imaging pipeline (the :class:`~deq_imaging.backends.Backend` protocol)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from deq_core.jax import analysis
from deq_core.jax.train import fit
from deq_core.training import History
from deq_imaging.backends import TrainingRun
from deq_imaging.models import jax as models


@eqx.filter_jit
def _start(cell: eqx.Module, y: jax.Array) -> jax.Array:
    return cell.init(y)


@eqx.filter_jit
def _step(cell: eqx.Module, z: jax.Array, y: jax.Array) -> jax.Array:
    return cell(z, y)


class Adapter:
    """JAX on ``device`` in ``dtype`` (float64 needs ``jax_enable_x64``): ``eqx.filter_jit``, PRNG keys."""

    name = "jax"
    models = models
    stores_prediction = False

    def __init__(self, device: str = "cpu", dtype: str = "float32") -> None:
        """Compute on ``device`` (``cpu``, or ``cuda`` for the first GPU) in ``dtype``."""
        self.device, self.dtype = jax.devices("gpu" if device == "cuda" else device)[0], jnp.dtype(dtype)

    def array(self, a: np.ndarray) -> jax.Array:
        """A JAX array copy of ``a``."""
        return jnp.asarray(np.asarray(a), dtype=self.dtype)

    def numpy(self, a: jax.Array) -> np.ndarray:
        """A numpy copy of ``a``."""
        return np.asarray(a)

    def no_grad(self) -> contextlib.AbstractContextManager:
        """No block needed: JAX records nothing outside a transformation."""
        return contextlib.nullcontext()

    def stop_gradient(self, fn: Callable[[], Any]) -> Any:
        """``jax.lax.stop_gradient(fn())``."""
        return jax.lax.stop_gradient(fn())

    def jit(self, fn: Callable) -> Callable:
        """``eqx.filter_jit(fn)``."""
        return eqx.filter_jit(fn)

    def scope(self) -> contextlib.AbstractContextManager:
        """``jax.default_device`` of the adapter's device."""
        return jax.default_device(self.device)

    def cells(self, spec: Any, cfg: Any, seed: int, count: int, stream: int = 0) -> list[Any]:
        """``count`` cells from the keys split off ``key(seed)`` (folded with ``stream`` when it is not 0)."""
        key = jax.random.key(seed)
        if stream:
            key = jax.random.fold_in(key, stream)
        return [models.build_cell(spec, cfg, k) for k in jax.random.split(key, count)]

    def place(self, model: Any) -> Any:
        """``model`` with its floating-point arrays in the adapter's dtype."""
        return jax.tree.map(lambda a: a.astype(self.dtype) if eqx.is_inexact_array(a) else a, model)

    def inference(self, model: Any) -> Any:
        """``eqx.nn.inference_mode(model)``."""
        return eqx.nn.inference_mode(model)

    start = staticmethod(_start)
    step = staticmethod(_step)

    def fit(self, run: TrainingRun) -> tuple[Any, History]:
        """deq-core's JAX ``fit`` with ``optax.adam`` (cosine-decayed over the run, or a constant rate)."""
        rate = run.lr if run.schedule == "constant" else optax.cosine_decay_schedule(run.lr, run.config.steps)
        return fit(run.model, optax.adam(rate), run.loss_fn, run.batches, run.config, warm=run.warm)

    lipschitz_summary = staticmethod(analysis.lipschitz_summary)
    local_lipschitz = staticmethod(analysis.local_lipschitz)
    count_parameters = staticmethod(models.count_parameters)
