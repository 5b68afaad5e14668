"""What autograd keeps for the backward pass: the measure behind deq-core's constant-memory claims."""

from __future__ import annotations

from collections.abc import Callable

import torch


def saved_bytes(fn: Callable[[], object]) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs (``saved_tensors_hooks``)."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return total
