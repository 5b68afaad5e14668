"""Torch-only operator behaviour: autograd through the Radon pair and the blurs, seeded noise."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deq_imaging.operators import gaussian_kernel, gaussian_noise  # noqa: E402
from deq_imaging.operators import torch as T  # noqa: E402


def test_radon_autograd_any_order():
    op = T.Radon(8, np.arange(0, 180, 30.0))
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: op.adjoint(op.forward(v)), (x,))
    assert torch.autograd.gradgradcheck(op.forward, (x,))


def test_blur_autograd():
    op = T.PaddedBlur(gaussian_kernel(3, 1.0), (6, 7), "valid")
    x = torch.rand(1, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: op.adjoint(op.forward(v)), (x,))


def test_noise_seeded_and_matches_level():
    x = torch.full((4, 1, 32, 32), 0.5, dtype=torch.float64)
    a, b = T.gaussian_noise(x, 0.1, seed=3), T.gaussian_noise(x, 0.1, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, T.gaussian_noise(x, 0.1, seed=4))
    assert float((a - x).std()) == pytest.approx(0.1, rel=0.05)
    per = T.gaussian_noise(x, torch.tensor([0.0, 0.0, 0.2, 0.2]), seed=0)
    assert torch.equal(per[:2], x[:2]) and float((per[2:] - x[2:]).std()) == pytest.approx(0.2, rel=0.05)
    p = T.poisson_noise(x, 100.0, seed=1)
    assert torch.equal(p, T.poisson_noise(x, 100.0, seed=1))
    assert float(p.mean()) == pytest.approx(0.5, rel=0.02) and float(p.var()) == pytest.approx(0.005, rel=0.1)
    with pytest.raises(ValueError, match="shape"):
        T.gaussian_noise(x, torch.tensor([0.1, 0.2]), seed=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        T.gaussian_noise(x[0], 0.1, seed=0)


def test_numpy_noise_seeded():
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    assert np.array_equal(gaussian_noise(x, 0.1, 5), gaussian_noise(x, 0.1, 5))
    assert gaussian_noise(x, 0.1, 5).dtype == np.float32
