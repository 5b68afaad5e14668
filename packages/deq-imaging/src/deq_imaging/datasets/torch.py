"""Turn dataset arrays (numpy (N, C, H, W) float32) into torch tensors."""

from __future__ import annotations

import numpy as np
import torch


def to_torch(
    array: np.ndarray, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A tensor copy of ``array`` on ``device`` with ``dtype``."""
    return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)
