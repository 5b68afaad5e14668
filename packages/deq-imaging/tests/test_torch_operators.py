"""Torch operators: exact adjoints, agreement with the numpy reference (and so with JAX), errors, autograd."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from imaging_checks import check_adjoint, random_pair, reference_op  # noqa: E402
from skimage.transform import iradon, radon  # noqa: E402

from deq_imaging.datasets import shepp_logan  # noqa: E402
from deq_imaging.operators import gaussian_kernel, gaussian_noise  # noqa: E402
from deq_imaging.operators import torch as T  # noqa: E402
from deq_imaging.operators.reference import power_norm  # noqa: E402


def _np_fn(fn, dtype):
    return lambda a: fn(torch.as_tensor(a, dtype=dtype)).numpy()


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_adjoint(operator_case, dtype, tol):
    _, cls, args, ch = operator_case
    op = getattr(T, cls)(*args)
    x, y = random_pair(op, ch, seed=1)
    check_adjoint(_np_fn(op.forward, dtype), _np_fn(op.adjoint, dtype), x, y, tol)


def test_matches_reference(operator_case):
    _, cls, args, ch = operator_case
    op, ref = getattr(T, cls)(*args), reference_op(cls, args)
    x, y = random_pair(op, ch, seed=2)
    fx, ay = op.forward(torch.as_tensor(x)).numpy(), op.adjoint(torch.as_tensor(y)).numpy()
    np.testing.assert_allclose(fx, ref.forward(x), rtol=0, atol=1e-10 * np.abs(fx).max())
    np.testing.assert_allclose(ay, ref.adjoint(y), rtol=0, atol=1e-10 * np.abs(ay).max())
    x32 = op.forward(torch.as_tensor(x, dtype=torch.float32))
    assert x32.dtype == torch.float32
    np.testing.assert_allclose(x32.numpy(), fx, rtol=0, atol=1e-5 * np.abs(fx).max())


def test_bad_shape_and_dtype(operator_case):
    _, cls, args, ch = operator_case
    op = getattr(T, cls)(*args)
    h, w = op.image_shape
    with pytest.raises(ValueError, match=rf"expected shape \(N, C, {h}, {w}\)"):
        op.forward(torch.zeros(1, ch, h + 1, w))
    with pytest.raises(ValueError, match=r"expected shape"):
        op.forward(torch.zeros(ch, h, w))
    with pytest.raises(ValueError, match="dtype"):
        op.forward(torch.zeros(1, ch, h, w, dtype=torch.int64))
    with pytest.raises(ValueError, match="expected shape"):
        op.adjoint(torch.zeros(1, ch, h + 3, w + 3))


def test_norm_matches_power_iteration(operator_case):
    _, cls, args, _ = operator_case
    op = getattr(T, cls)(*args)
    ref = reference_op(cls, args)
    assert op.norm() == pytest.approx(
        power_norm(ref, op.image_shape, n_iter=100 if cls == "Radon" else 300), rel=5e-3
    )
    if cls == "PaddedBlur":  # never above the circular-blur norm max |K|
        assert op.norm() <= np.abs(ref.geometry.otf).max() + 1e-12


@pytest.mark.parametrize("cls", ["Identity", "CircularBlur", "Inpainting"])
def test_data_prox_solves_normal_equations(cls):
    rng = np.random.default_rng(0)
    args = {
        "Identity": ((10, 12),),
        "CircularBlur": (gaussian_kernel(5, 1.5), (10, 12)),
        "Inpainting": ((rng.random((10, 12)) < 0.5).astype(float),),
    }[cls]
    op = getattr(T, cls)(*args)
    y, z = torch.as_tensor(rng.random((3, 2, 10, 12))), torch.as_tensor(rng.random((3, 2, 10, 12)))
    mu = torch.tensor([0.1, 1.0, 5.0], dtype=torch.float64)
    x = op.data_prox(y, z, mu)
    m = mu.reshape(-1, 1, 1, 1)
    torch.testing.assert_close(
        op.adjoint(op.forward(x)) + m * x, op.adjoint(y) + m * z, rtol=1e-10, atol=1e-10
    )


def test_radon_matches_skimage_and_iradon_reconstructs():
    x = shepp_logan(64)
    ours = T.Radon(64).forward(torch.as_tensor(x, dtype=torch.float64))[0, 0].numpy()
    sk = radon(x[0, 0].astype(np.float64), circle=True)
    assert ours.shape == sk.shape == (64, 180)
    assert np.linalg.norm(ours - sk) / np.linalg.norm(sk) < 0.02
    rec = iradon(ours, circle=True)
    assert np.linalg.norm(rec - x[0, 0]) / np.linalg.norm(x[0, 0]) < 0.2
    fbp = T.Radon(64).fbp(torch.as_tensor(ours[None, None]))[0, 0].numpy()
    assert np.linalg.norm(fbp - rec) / np.linalg.norm(rec) < 0.05


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


def test_numpy_noise_seeded():
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    assert np.array_equal(gaussian_noise(x, 0.1, 5), gaussian_noise(x, 0.1, 5))
    assert gaussian_noise(x, 0.1, 5).dtype == np.float32
