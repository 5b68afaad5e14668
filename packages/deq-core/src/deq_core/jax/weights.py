"""An Equinox model's array leaves as one file (``eqx.tree_serialise_leaves``): written atomically.

Reading needs a template of the same structure (the model rebuilt from its config). Used by checkpoints and
by model folders (:mod:`deq_core.model_files`); a file that does not fit raises the caller's error class.
"""

from __future__ import annotations

import io
import os
from typing import Any

import equinox as eqx

from deq_core.files import atomic_write


def serialise(tree: Any) -> bytes:
    """The leaves of ``tree`` as bytes, in ``eqx.tree_serialise_leaves``'s format."""
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree)
    return buffer.getvalue()


def save_weights(model: Any, path: str | os.PathLike) -> None:
    """Write ``model``'s array leaves to ``path`` atomically."""
    atomic_write(path, serialise(model))


def load_weights(like: Any, path: str | os.PathLike, error: type[Exception] = ValueError) -> Any:
    """``like`` with its leaves read from ``path``; raises ``error`` naming the file when it does not fit."""
    try:
        return eqx.tree_deserialise_leaves(os.fspath(path), like)
    except (ValueError, RuntimeError, EOFError, OSError) as failure:
        raise error(f"{path} does not fit {type(like).__name__}: {failure}") from failure
