"""Checkpoints of a PyTorch run: weights as safetensors, optimizer and RNG states via ``torch.save``.

A checkpoint at step ``n`` is ``step-<n>.model.safetensors`` (the module's state dict, no pickle) and
``step-<n>.state.pt`` (optimizer, scheduler, torch/CUDA/numpy/python RNG states, the sampler generator),
plus any extra files the trainer adds, committed by a manifest with each file's SHA-256
(:class:`deq_core.training.CheckpointDir`). ``state.pt`` holds only tensors and plain Python values and is
read with ``torch.load(weights_only=True)``. :func:`load` verifies the checksums before reading anything, so a
damaged or swapped file raises :class:`~deq_core.errors.CheckpointError` naming it.
"""

from __future__ import annotations

import io
import pickle
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from deq_core.errors import CheckpointError
from deq_core.files import atomic_write
from deq_core.torch.weights import load_weights, save_weights
from deq_core.training.checkpoints import CheckpointDir

MODEL = "model.safetensors"
STATE = "state.pt"


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and Python global RNG states, and ``generator``'s, as plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "gauss": [has_gauss, cached],
        },
        "python": random.getstate(),
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (numpy["kind"], keys, int(numpy["pos"]), int(numpy["gauss"][0]), float(numpy["gauss"][1]))
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if generator is not None:
        generator.set_state(state["generator"])


def save(
    directory: CheckpointDir,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    scheduler: Any = None,
    generator: torch.Generator | None = None,
    metadata: dict[str, Any] | None = None,
    extras: Mapping[str, bytes] | None = None,
) -> None:
    """Write the checkpoint of ``step`` atomically: weights, optimizer, scheduler, RNG states; then commit.

    ``extras`` maps more file names (e.g. ``"warm.pt"``) to their bytes, checksummed with the rest.
    """
    directory.prepare()
    save_weights(model, directory.path(step, MODEL), metadata={"step": str(step)})
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(generator),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(directory.path(step, STATE), buffer.getvalue())
    extras = dict(extras or {})
    for name, data in extras.items():
        atomic_write(directory.path(step, name), data)
    directory.commit(step, [MODEL, STATE, *extras], metadata)


def load(
    directory: CheckpointDir,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    scheduler: Any = None,
    generator: torch.Generator | None = None,
) -> None:
    """Load the checkpoint of ``step`` into ``model`` (strictly) and, when given, the optimizer and RNGs.

    The files read are verified against the manifest first; a missing, damaged or swapped one raises
    :class:`~deq_core.errors.CheckpointError` naming it (a resuming trainer uses
    :meth:`~deq_core.training.CheckpointDir.latest`, which falls back to an older intact checkpoint instead).
    """
    directory.verify(step, [MODEL] if optimizer is None else [MODEL, STATE])
    load_weights(model, directory.path(step, MODEL), CheckpointError)
    if optimizer is None:
        return
    state_path = directory.path(step, STATE)
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(f"{state_path} cannot be read: {error}") from error
    if state["step"] != step:
        raise CheckpointError(f"{state_path} records step {state['step']}, expected {step}")
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if state["scheduler"] is None:
            raise CheckpointError(f"{state_path} has no scheduler state but a scheduler was given")
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"], generator)
