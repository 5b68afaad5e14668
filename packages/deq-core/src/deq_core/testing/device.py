"""A pytest plugin that runs a test suite on an accelerator: ``pytest -p deq_core.testing.device``.

With ``DEQ_TEST_DEVICE=cuda`` in the environment, PyTorch creates tensors on the GPU by default
(``torch.set_default_device``), so device-agnostic code under test runs there unchanged, and JAX must find
a GPU (it uses one by default when its CUDA build is installed). Without the variable the plugin does
nothing. A suite that cannot reach the requested device fails at start instead of silently testing the CPU.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def requested_device() -> str | None:
    """The device named by ``DEQ_TEST_DEVICE``, or None."""
    return os.environ.get("DEQ_TEST_DEVICE") or None


def pytest_configure(config: pytest.Config) -> None:
    """Point each installed backend at the requested device, or stop the run if it is missing."""
    device = requested_device()
    if device is None:
        return
    if device != "cuda":
        raise pytest.UsageError(f"DEQ_TEST_DEVICE must be 'cuda' (or unset), got {device!r}")
    if importlib.util.find_spec("torch"):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(
                "DEQ_TEST_DEVICE=cuda but torch sees no CUDA device (is this a CPU build?)"
            )
        torch.set_default_device("cuda")
    if importlib.util.find_spec("jax"):
        import jax

        if jax.default_backend() != "gpu":
            raise pytest.UsageError(
                f"DEQ_TEST_DEVICE=cuda but JAX runs on {jax.default_backend()!r}; install jax[cuda12]"
            )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which device the suite runs on."""
    device = requested_device()
    return f"deq test device: {device}" if device else None
