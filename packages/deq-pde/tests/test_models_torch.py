"""PyTorch FNO-DEQ and FNO: shapes, equal sizes, gradients, exact spectral norm, contraction, training."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deq_pde.models import ModelSettings, TrainSettings  # noqa: E402
from deq_pde.models.torch import (  # noqa: E402
    FNO,
    FNODEQ,
    FourierLayer,
    SpectralConv2d,
    count_params,
    predict,
    train,
)

SETTINGS = ModelSettings(width=6, modes=3, projection=10, train_iters=3, phantom_steps=2)


def _inputs(batch=3, n=9, seed=0):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.choice([3.0, 12.0], (batch, n, n)), dtype=torch.float32)


def test_shapes_and_equal_parameter_counts():
    a = _inputs()
    deq, fno = FNODEQ(9, SETTINGS), FNO(9, SETTINGS)
    u, z = deq(a)
    assert u.shape == a.shape and z.shape == (3, 6, 9, 9)
    assert fno(a).shape == a.shape and deq.budget(a, 5).shape == a.shape
    assert count_params(deq) == count_params(fno)
    assert count_params(FNO(9, SETTINGS, depth=3)) > count_params(fno)


def test_predict_returns_the_solution_for_both_models():
    a = _inputs(batch=5)
    deq, fno = FNODEQ(9, SETTINGS), FNO(9, SETTINGS)
    with torch.no_grad():
        assert torch.allclose(predict(deq, a, batch=2), deq(a)[0], atol=1e-5)
        assert torch.allclose(predict(fno, a, batch=2), fno(a), atol=1e-6)
    assert predict(deq, a, steps=3).shape == a.shape


def test_first_iterate_is_the_explicit_layer_with_the_same_weights():
    deq, fno = FNODEQ(9, SETTINGS), FNO(9, SETTINGS)
    fno.codec.load_state_dict(deq.codec.state_dict())
    fno.layers[0].load_state_dict(deq.deq.cell.state_dict())
    a = _inputs()
    with torch.no_grad():
        assert torch.allclose(deq.budget(a, 1), fno(a), atol=1e-5)
        assert not torch.allclose(deq.budget(a, 2), fno(a), atol=1e-3)


def test_bad_input_shape_is_named():
    with pytest.raises(ValueError, match=r"input must have shape \(B, 9, 9\)"):
        FNODEQ(9, SETTINGS)(torch.zeros(2, 8, 8))


def test_spectral_conv_is_translation_equivariant_and_real():
    torch.manual_seed(0)
    conv = SpectralConv2d(4, 3)
    z = torch.randn(2, 4, 12, 12)
    shifted = conv(torch.roll(z, (2, 3), dims=(2, 3)))
    assert torch.allclose(shifted, torch.roll(conv(z), (2, 3), dims=(2, 3)), atol=1e-5)
    assert conv(z).dtype == torch.float32


def test_phantom_gradient_reaches_every_parameter():
    deq = FNODEQ(9, SETTINGS)
    u, _ = deq(_inputs())
    u.square().mean().backward()
    missing = [name for name, p in deq.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


def test_operator_norm_matches_svd_and_bounds_the_layer():
    torch.manual_seed(1)
    layer = FourierLayer(6, 3, contraction=0.5)
    with torch.no_grad():
        layer.spectral.weight.mul_(50.0)
    exact = torch.linalg.matrix_norm(layer.mode_matrices(), ord=2).max()
    assert torch.isclose(layer.operator_norm(iters=100), exact, rtol=1e-4)
    x = torch.randn(1, 6, 8, 8)
    args = (x, layer.scale())
    z1, z2 = torch.randn(2, 1, 6, 8, 8)
    with torch.no_grad():
        ratio = torch.linalg.vector_norm(layer(z1, args) - layer(z2, args)) / torch.linalg.vector_norm(
            z1 - z2
        )
    assert float(layer.scale().detach()) < 1.0 and float(ratio) <= 0.5 * 1.13 + 1e-4


def test_iterates_converge_from_zero():
    deq = FNODEQ(9, SETTINGS)
    a = _inputs()
    with torch.no_grad():
        y2, y4, y40, y41 = (deq.budget(a, t) for t in (2, 4, 40, 41))
    assert torch.linalg.vector_norm(y41 - y40) <= 1e-3 * torch.linalg.vector_norm(y4 - y2) + 1e-6


def test_train_lowers_the_loss_and_warm_starts():
    a = _inputs(batch=8, seed=3)
    u = a.flip(1) * 0.01 + 0.1
    for model in (FNODEQ(9, SETTINGS), FNO(9, SETTINGS)):
        history = train(model, a, u, TrainSettings(epochs=6, batch=4, lr=5e-3), seed=0)
        assert len(history) == 6 and history[-1] < history[0]
        assert not model.training
