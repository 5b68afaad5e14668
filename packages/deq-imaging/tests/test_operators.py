"""The operators on numpy, torch and JAX arrays in float32 and float64: exact adjoints, agreement with the
numpy reference, the precision kept, shape and dtype errors, exact data steps, Radon against skimage."""

from __future__ import annotations

import numpy as np
import pytest
from imaging_checks import check_adjoint, random_pair, reference_op
from skimage.transform import iradon, radon

from deq_imaging.datasets import shepp_logan
from deq_imaging.operators import gaussian_kernel
from deq_imaging.operators import linear as L
from deq_imaging.operators.reference import power_norm


def test_adjoint(operator_case, arrays):
    _, cls, args, ch = operator_case
    op = getattr(L, cls)(*args)
    x, y = random_pair(op, ch, seed=1)
    check_adjoint(arrays.wrap(op.forward), arrays.wrap(op.adjoint), x, y, arrays.tol)


def test_matches_reference(operator_case, arrays):
    """Same lines, same numbers: the backend's result equals numpy's float64 one to its precision."""
    _, cls, args, ch = operator_case
    op, ref = getattr(L, cls)(*args), reference_op(cls, args)
    x, y = random_pair(op, ch, seed=2)
    for ours, oracle in (
        (arrays.wrap(op.forward)(x), ref.forward(x)),
        (arrays.wrap(op.adjoint)(y), ref.adjoint(y)),
    ):
        np.testing.assert_allclose(ours, oracle, rtol=0, atol=arrays.tol * np.abs(oracle).max())


def test_bad_shape_and_dtype(operator_case, arrays):
    _, cls, args, ch = operator_case
    op = getattr(L, cls)(*args)
    h, w = op.image_shape
    with pytest.raises(ValueError, match=rf"expected shape \(N, C, {h}, {w}\)"):
        op.forward(arrays.asarray(np.zeros((1, ch, h + 1, w))))
    with pytest.raises(ValueError, match="expected shape"):
        op.forward(arrays.asarray(np.zeros((ch, h, w))))
    with pytest.raises(ValueError, match="expected shape"):
        op.adjoint(arrays.asarray(np.zeros((1, ch, h + 3, w + 3))))
    with pytest.raises(ValueError, match="dtype"):
        op.forward(arrays.asarray(np.zeros((1, ch, h, w)), "int32"))
    with pytest.raises(ValueError, match="expected a numpy, torch or JAX array"):
        op.forward([[0.0]])


def test_norm_matches_power_iteration(operator_case):
    _, cls, args, _ = operator_case
    op, ref = getattr(L, cls)(*args), reference_op(cls, args)
    assert op.norm() == pytest.approx(
        power_norm(ref, op.image_shape, n_iter=60 if cls == "Radon" else 300), rel=5e-3
    )
    if cls == "PaddedBlur":  # never above the circular-blur norm max |K|
        assert op.norm() <= np.abs(op.geometry.otf).max() + 1e-12


@pytest.mark.parametrize("cls", ["Identity", "CircularBlur", "Inpainting"])
def test_data_prox_solves_normal_equations(cls, arrays):
    rng = np.random.default_rng(0)
    args = {
        "Identity": ((10, 12),),
        "CircularBlur": (gaussian_kernel(5, 1.5), (10, 12)),
        "Inpainting": ((rng.random((10, 12)) < 0.5).astype(float),),
    }[cls]
    op = getattr(L, cls)(*args)
    y, z, mu = rng.random((3, 2, 10, 12)), rng.random((3, 2, 10, 12)), np.asarray([0.1, 1.0, 5.0])
    x = arrays.wrap(op.data_prox)(y, z, mu)
    m = mu.reshape(-1, 1, 1, 1)
    ref = reference_op(cls, args)
    lhs, rhs = ref.adjoint(ref.forward(x)) + m * x, ref.adjoint(y) + m * z
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=10 * arrays.tol * np.abs(rhs).max())


def test_radon_matches_skimage_and_iradon_reconstructs(arrays):
    if arrays.dtype == "float32":
        pytest.skip("the float64 comparison covers it; float32 agreement is test_matches_reference's")
    x = shepp_logan(64)
    op = L.Radon(64)
    ours = arrays.wrap(op.forward)(x)[0, 0]
    sk = radon(x[0, 0].astype(np.float64), circle=True)
    assert ours.shape == sk.shape == (64, 180)
    assert np.linalg.norm(ours - sk) / np.linalg.norm(sk) < 0.02
    rec = iradon(ours, circle=True)
    assert np.linalg.norm(rec - x[0, 0]) / np.linalg.norm(x[0, 0]) < 0.2
    fbp = arrays.wrap(op.fbp)(ours[None, None])[0, 0]
    assert np.linalg.norm(fbp - rec) / np.linalg.norm(rec) < 0.05
