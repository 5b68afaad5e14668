"""The ``deq_core.testing.device`` pytest plugin: a no-op by default; a GPU request never runs on the CPU."""

import importlib.util

import pytest

from deq_core.testing import device


def test_plugin_does_nothing_without_a_request(monkeypatch):
    monkeypatch.delenv("DEQ_TEST_DEVICE", raising=False)
    assert device.requested_device() is None
    assert device.pytest_configure(None) is None
    assert device.pytest_report_header(None) is None


def test_plugin_rejects_unknown_devices(monkeypatch):
    monkeypatch.setenv("DEQ_TEST_DEVICE", "tpu")
    with pytest.raises(pytest.UsageError, match="DEQ_TEST_DEVICE must be 'cuda'"):
        device.pytest_configure(None)


@pytest.mark.skipif(
    not (importlib.util.find_spec("torch") or importlib.util.find_spec("jax")), reason="needs a backend"
)
def test_plugin_stops_when_no_gpu_is_reachable(monkeypatch):
    if importlib.util.find_spec("torch"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
    if importlib.util.find_spec("jax"):
        import jax

        if jax.default_backend() == "gpu":
            pytest.skip("JAX runs on a GPU")
    monkeypatch.setenv("DEQ_TEST_DEVICE", "cuda")
    with pytest.raises(pytest.UsageError, match="DEQ_TEST_DEVICE=cuda but"):
        device.pytest_configure(None)
