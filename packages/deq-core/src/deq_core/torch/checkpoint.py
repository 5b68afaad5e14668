"""Checkpoints of a PyTorch run: weights as safetensors, optimizer and RNG states via ``torch.save``.

A checkpoint at step ``n`` is ``step-<n>.model.safetensors`` (the module's state dict, no pickle) and
``step-<n>.state.pt`` (optimizer, scheduler, torch/CUDA/numpy/python RNG states, the sampler generator),
committed by a manifest (:class:`deq_core.training.CheckpointDir`). ``state.pt`` holds only tensors and
plain Python values and is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import random
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from deq_core.files import atomic_path, atomic_write
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
    extras: dict[str, bytes] | None = None,
) -> None:
    """Write the checkpoint of ``step`` atomically: weights, optimizer, scheduler, RNG states and the
    ``extras`` files (name -> contents, e.g. the trainer's warm starts); then commit."""
    directory.prepare()
    with atomic_path(directory.path(step, MODEL)) as temporary:
        save_model(model, str(temporary), metadata={"step": str(step)})
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(generator),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(directory.path(step, STATE), buffer.getvalue())
    for name, contents in (extras or {}).items():
        atomic_write(directory.path(step, name), contents)
    directory.commit(step, [MODEL, STATE, *(extras or {})], metadata)


def load(
    directory: CheckpointDir,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    scheduler: Any = None,
    generator: torch.Generator | None = None,
) -> None:
    """Load the checkpoint of ``step`` into ``model`` (strictly) and, when given, the optimizer and RNGs."""
    manifest = directory.manifest(step)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    missing, unexpected = load_model(
        model, str(directory.path(step, MODEL)), strict=False, device=str(device)
    )
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {directory.path(step, MODEL)} does not fit {type(model).__name__}: "
            f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    if optimizer is None:
        return
    if STATE not in manifest["files"]:
        raise ValueError(f"checkpoint {step} in {directory.directory} has no optimizer state")
    state = torch.load(directory.path(step, STATE), map_location="cpu", weights_only=True)
    if state["step"] != step:
        raise ValueError(f"{directory.path(step, STATE)} records step {state['step']}, expected {step}")
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if state["scheduler"] is None:
            raise ValueError(f"checkpoint {step} has no scheduler state but a scheduler was given")
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"], generator)
