"""PyTorch FNO-DEQ and FNO: shapes, equal sizes, gradients, exact spectral norm, contraction, training."""

import pytest

torch = pytest.importorskip("torch")

import fno  # noqa: E402

from deq_pde.models import TrainSettings  # noqa: E402
from deq_pde.models.torch import FNO, FNODEQ, FourierLayer, count_params, predict, train  # noqa: E402


def _inputs(batch=3, seed=0):
    return torch.as_tensor(fno.inputs(batch, seed=seed), dtype=torch.float32)


def test_shapes_and_equal_parameter_counts():
    a = _inputs()
    deq, explicit = FNODEQ(9, fno.SETTINGS), FNO(9, fno.SETTINGS)
    u, z = deq(a)
    assert u.shape == a.shape and z.shape == (3, 6, 9, 9)
    assert explicit(a).shape == a.shape and deq.budget(a, 5).shape == a.shape
    assert count_params(deq) == count_params(explicit)
    assert count_params(FNO(9, fno.SETTINGS, depth=3)) > count_params(explicit)


def test_predict_returns_the_solution_for_both_models():
    a = _inputs(batch=5)
    deq, explicit = FNODEQ(9, fno.SETTINGS), FNO(9, fno.SETTINGS)
    with torch.no_grad():
        assert torch.allclose(predict(deq, a, batch=2), deq(a)[0], atol=1e-5)
        assert torch.allclose(predict(explicit, a, batch=2), explicit(a), atol=1e-6)
    assert predict(deq, a, steps=3).shape == a.shape


def test_first_iterate_is_the_explicit_layer_with_the_same_weights():
    deq, explicit = FNODEQ(9, fno.SETTINGS), FNO(9, fno.SETTINGS)
    explicit.codec.load_state_dict(deq.codec.state_dict())
    explicit.layers[0].load_state_dict(deq.deq.cell.state_dict())
    a = _inputs()
    with torch.no_grad():
        assert torch.allclose(deq.budget(a, 1), explicit(a), atol=1e-5)
        assert not torch.allclose(deq.budget(a, 2), explicit(a), atol=1e-3)


def test_phantom_gradient_reaches_every_parameter():
    deq = FNODEQ(9, fno.SETTINGS)
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
    deq = FNODEQ(9, fno.SETTINGS)
    a = _inputs()
    with torch.no_grad():
        y2, y4, y40, y41 = (deq.budget(a, t) for t in (2, 4, 40, 41))
    assert torch.linalg.vector_norm(y41 - y40) <= 1e-3 * torch.linalg.vector_norm(y4 - y2) + 1e-6


def test_train_lowers_the_loss():
    a = _inputs(batch=8, seed=3)
    u = torch.as_tensor(fno.targets(a.numpy()).copy())
    for model in (FNODEQ(9, fno.SETTINGS), FNO(9, fno.SETTINGS)):
        history = train(model, a, u, TrainSettings(epochs=6, batch=4, lr=5e-3), seed=0)
        assert len(history) == 6 and history[-1] < history[0]
        assert not model.training


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    a = torch.as_tensor(fno.inputs(8, seed=3))
    u = torch.as_tensor(fno.targets(fno.inputs(8, seed=3)).copy())
    settings = TrainSettings(epochs=3, batch=4, lr=5e-3)  # 2 steps per epoch

    def run(**checkpoints):
        torch.manual_seed(0)
        model = FNODEQ(9, fno.SETTINGS).double()
        return model, train(model, a, u, settings, seed=0, **checkpoints)

    whole, losses = run()
    folder = {"checkpoint_dir": str(tmp_path), "checkpoint_every": 1}
    run(**folder, stop_after=3)  # killed in the middle of the second epoch
    resumed, tail = run(**folder)
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert tail == losses[-1:] and len(losses) == 3
