"""Turn dataset arrays (numpy (N, C, H, W) float32) into JAX arrays."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def to_jax(array: np.ndarray, dtype: jnp.dtype = jnp.float32) -> jax.Array:
    """A JAX array copy of ``array`` with ``dtype`` on the default device."""
    return jnp.asarray(np.asarray(array), dtype=dtype)
