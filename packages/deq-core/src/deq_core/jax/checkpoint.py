"""Checkpoints of a JAX run: the model and ``(optimizer state, PRNG key)`` via ``eqx.tree_serialise_leaves``.

A checkpoint at step ``n`` is ``step-<n>.model.eqx`` and ``step-<n>.state.eqx``, plus any extra files the
trainer adds, committed by a manifest with each file's SHA-256 (:class:`deq_core.training.CheckpointDir`).
Reading needs templates of the same structure: the model being trained and a freshly initialised optimizer
state. :func:`load` verifies the checksums first, so a damaged or swapped file raises
:class:`~deq_core.errors.CheckpointError` naming it, and "does not fit" means what it says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from deq_core.errors import CheckpointError
from deq_core.files import atomic_write
from deq_core.jax.weights import load_weights, serialise
from deq_core.training.checkpoints import CheckpointDir

MODEL = "model.eqx"
STATE = "state.eqx"


def _key_data(key: jax.Array) -> jax.Array:
    """The raw ``uint32`` data of a typed or legacy PRNG key."""
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def save(
    directory: CheckpointDir,
    step: int,
    model: Any,
    opt_state: Any,
    key: jax.Array,
    metadata: dict[str, Any] | None = None,
    extras: Mapping[str, bytes] | None = None,
) -> None:
    """Write the checkpoint of ``step`` atomically: model leaves, optimizer state and key; then commit.

    ``extras`` maps more file names (e.g. ``"warm.npz"``) to their bytes, checksummed with the rest.
    """
    directory.prepare()
    atomic_write(directory.path(step, MODEL), serialise(model))
    atomic_write(directory.path(step, STATE), serialise((opt_state, _key_data(key))))
    extras = dict(extras or {})
    for name, data in extras.items():
        atomic_write(directory.path(step, name), data)
    directory.commit(step, [MODEL, STATE, *extras], metadata)


def load(
    directory: CheckpointDir, step: int, model: Any, opt_state: Any, key: jax.Array
) -> tuple[Any, Any, jax.Array]:
    """Read the checkpoint of ``step`` shaped like ``(model, opt_state, key)``; returns the loaded three.

    The files are verified against the manifest first; a missing, damaged or swapped one raises
    :class:`~deq_core.errors.CheckpointError` naming it (a resuming trainer uses
    :meth:`~deq_core.training.CheckpointDir.latest`, which falls back to an older intact checkpoint instead).
    """
    directory.verify(step, [MODEL, STATE])
    model_path, state_path = directory.path(step, MODEL), directory.path(step, STATE)
    model = load_weights(model, model_path, CheckpointError)
    opt_state, data = load_weights((opt_state, _key_data(key)), state_path, CheckpointError)
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    return model, opt_state, jax.random.wrap_key_data(data, impl=jax.random.key_impl(key)) if typed else data
