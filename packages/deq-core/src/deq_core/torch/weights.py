"""A module's weights as one safetensors file (no pickle): written atomically, read strictly.

Used by checkpoints and by model folders (:mod:`deq_core.model_files`); a file that does not fit the module
raises the caller's error class naming the file, the missing and the unexpected keys.
"""

from __future__ import annotations

import os

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from deq_core.files import atomic_path


def save_weights(model: nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write ``model``'s state dict (parameters and buffers) to ``path`` as safetensors, atomically."""
    with atomic_path(path) as temporary:
        save_model(model, str(temporary), metadata=metadata)


def load_weights(model: nn.Module, path: str | os.PathLike, error: type[Exception] = ValueError) -> None:
    """Load ``path`` into ``model`` in place, on the device of its parameters; every key must match.

    Raises ``error`` naming the file when it cannot be read or does not fit ``model``.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        missing, unexpected = load_model(model, os.fspath(path), strict=False, device=str(device))
    except (SafetensorError, RuntimeError, OSError) as failure:
        raise error(f"{path} does not fit {type(model).__name__}: {failure}") from failure
    if missing or unexpected:
        raise error(
            f"{path} does not fit {type(model).__name__}: "
            f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
