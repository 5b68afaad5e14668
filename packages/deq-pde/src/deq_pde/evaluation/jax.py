"""The JAX :class:`~deq_pde.evaluation.pipeline.Backend` of a PDE run: a default device, jitted calls."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from deq_core.jax.analysis import lipschitz_summary, scaling_analysis
from deq_pde.evaluation.pipeline import Backend
from deq_pde.models import jax as models


def backend(device: str) -> Backend:
    """The pipeline's JAX side on ``device`` (``"cpu"``, ``"cuda"`` or another JAX platform)."""
    platform = "gpu" if device == "cuda" else device
    rng = [np.random.default_rng(0)]  # the modules draw their initial weights from it, once seeded

    def seed(value: int) -> None:
        rng[0] = np.random.default_rng(value)

    def build(n, settings, depths):
        implicit = models.FNODEQ(n, settings, rng[0])
        return implicit, {depth: models.FNO(n, settings, rng[0], depth) for depth in depths}

    return Backend(
        on_device=lambda: jax.default_device(jax.devices(platform)[0]),
        seed=seed,
        array=lambda x: jnp.asarray(x, dtype=jnp.float32),
        to_numpy=np.asarray,
        models=build,
        train=models.train,
        budget=models.budget_fn,
        forward=eqx.filter_jit,
        predict=lambda model, a, steps=None: models.predict(model, a, steps=steps),
        count_params=models.count_params,
        warmup=lambda a: a,  # the warm-up call compiles for this shape
        wait=jax.block_until_ready,
        scaling_analysis=scaling_analysis,
        lipschitz_summary=lipschitz_summary,
    )
