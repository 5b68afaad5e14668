"""Checkpoints of a JAX run: the model and ``(optimizer state, PRNG key)`` via ``eqx.tree_serialise_leaves``.

A checkpoint at step ``n`` is ``step-<n>.model.eqx`` and ``step-<n>.state.eqx``, committed by a manifest
(:class:`deq_core.training.CheckpointDir`). Reading needs templates of the same structure: the model being
trained and a freshly initialised optimizer state.
"""

from __future__ import annotations

import io
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from deq_core.files import atomic_write
from deq_core.training.checkpoints import CheckpointDir

MODEL = "model.eqx"
STATE = "state.eqx"


def _serialise(tree: Any) -> bytes:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree)
    return buffer.getvalue()


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
    extras: dict[str, bytes] | None = None,
) -> None:
    """Write the checkpoint of ``step`` atomically: model leaves, optimizer state, key and the ``extras``
    files (name -> contents, e.g. the trainer's warm starts); then commit."""
    directory.prepare()
    atomic_write(directory.path(step, MODEL), _serialise(model))
    atomic_write(directory.path(step, STATE), _serialise((opt_state, _key_data(key))))
    for name, contents in (extras or {}).items():
        atomic_write(directory.path(step, name), contents)
    directory.commit(step, [MODEL, STATE, *(extras or {})], metadata)


def load(
    directory: CheckpointDir, step: int, model: Any, opt_state: Any, key: jax.Array
) -> tuple[Any, Any, jax.Array]:
    """Read the checkpoint of ``step`` shaped like ``(model, opt_state, key)``; returns the loaded three."""
    directory.manifest(step)
    paths = directory.path(step, MODEL), directory.path(step, STATE)
    try:
        model = eqx.tree_deserialise_leaves(paths[0], model)
        opt_state, data = eqx.tree_deserialise_leaves(paths[1], (opt_state, _key_data(key)))
    except (ValueError, RuntimeError, EOFError) as error:
        raise ValueError(
            f"checkpoint {step} in {directory.directory} does not fit this model/optimizer: {error}"
        ) from error
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    return model, opt_state, jax.random.wrap_key_data(data, impl=jax.random.key_impl(key)) if typed else data
