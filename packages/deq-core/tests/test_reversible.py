"""The reversible backward: the engine's coupled loop and reverse walk, and both backends' gradients.

The gradient is checked against plain autodiff through a hand-written coupled loop (the computed iterate's
exact gradient, also with per-sample step counts) and against a long unrolled Picard iteration (the fixed
point's gradient), in float64.
"""

import numpy as np
import pytest

from deq_core.config import Reversible, Stop, solve_options
from deq_core.engine import reversible
from deq_core.engine.numpy_ops import NumpyOps
from deq_core.solution import Result
from deq_core.testing.fixtures import jax_x64

BETA = 0.5


def _backend(name: str):
    """The array namespace and ``solve_reversible`` of one backend (skipping when it is not installed)."""
    if name == "torch":
        torch = pytest.importorskip("torch")
        from deq_core.torch.reversible import solve_reversible

        return torch, solve_reversible
    jax = pytest.importorskip("jax")
    from deq_core.jax.reversible import solve_reversible

    return jax.numpy, solve_reversible


def _options(tol: float, max_iter: int):
    """Reversible solve options with relative tolerance ``tol`` and a budget of ``max_iter`` evaluations."""
    return solve_options(solver="picard", backward=Reversible(beta=BETA), tol=tol, max_iter=max_iter)


def _data(batch: int = 3, d: int = 6, rates=(0.5, 0.7, 0.9), seed: int = 0) -> dict[str, np.ndarray]:
    """A contraction ``W``, inputs ``x``, per-sample rates ``r``, a start ``z0`` and loss weights ``c``."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, d))
    return {
        "W": W / np.linalg.norm(W, 2),
        "x": rng.standard_normal((batch, d)),
        "r": np.asarray(rates, dtype=float)[:batch, None],
        "z0": rng.standard_normal((batch, d)),
        "c": rng.standard_normal((batch, d)),
    }


def _cell(xp, W):
    """``z -> tanh(r * z W^T + x)`` with ``args = (x, r)``: sample ``i`` contracts at rate ``r_i``."""
    return lambda z, args: xp.tanh(args[1] * (z @ W.T) + args[0])


def _coupled(xp, f, z0, steps):
    """The coupled iteration by hand, sample ``i`` taking ``steps[i]`` steps (differentiable throughout)."""
    y = z = z0
    for k in range(int(steps.max())):
        going = steps[:, None] > k
        y = xp.where(going, (1 - BETA) * y + BETA * f(z), y)
        z = xp.where(going, (1 - BETA) * z + BETA * f(y), z)
    return z


def _unrolled(f, z0, iters: int = 400):
    """Plain Picard iteration, long enough to be converged in float64."""
    z = z0
    for _ in range(iters):
        z = f(z)
    return z


def _assert_close(actual, expected, rtol: float) -> None:
    """``||actual - expected|| <= rtol ||expected||``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert np.linalg.norm(actual - expected) <= rtol * np.linalg.norm(expected)


def _assert_all_close(actual, expected, rtol: float = 1e-6) -> None:
    """:func:`_assert_close` for each pair of two equally long sequences."""
    for a, b in zip(actual, expected, strict=True):
        _assert_close(a, b, rtol)


# --- the engine, on numpy ---------------------------------------------------------------------------------


def test_budget_counts_evaluations_of_f():
    """``nstep`` is ``1 + 2 * steps`` evaluations and never exceeds ``max_iter`` (odd or even)."""
    data = _data()
    f = lambda z: _cell(np, data["W"])(z, (data["x"], data["r"]))
    for max_iter in (3, 4, 40, 41):
        calls = []
        counted = lambda z, calls=calls: calls.append(1) or f(z)
        loop, _ = reversible.forward(NumpyOps(), counted, data["z0"], BETA, Stop(rtol=0.0), max_iter)
        assert (loop.nstep == max_iter - (1 - max_iter % 2)).all()
        assert len(calls) == loop.nstep.max()
        assert (loop.status == int(Result.MAX_STEPS_REACHED)).all()


def test_samples_stop_on_their_own_with_the_residual_of_the_returned_iterate():
    """Faster samples stop earlier; each returned ``z`` has exactly the reported residual."""
    data = _data(rates=(0.1, 0.5, 1.0))
    f = lambda z: _cell(np, data["W"])(z, (data["x"], data["r"]))
    loop, _ = reversible.forward(NumpyOps(), f, data["z0"], BETA, Stop(rtol=1e-8), 201)
    assert loop.converged.all()
    assert len(set(loop.nstep.tolist())) == 3 and (loop.nstep % 2 == 1).all()
    np.testing.assert_array_equal(loop.abs_residual, np.linalg.norm(f(loop.z) - loop.z, axis=1))
    assert (loop.rel_residual <= 1e-8).all()
    np.testing.assert_array_equal(loop.z, _coupled(np, f, data["z0"], (loop.nstep - 1) // 2))


def test_a_nonfinite_sample_stops_alone():
    """A sample whose ``f(z)`` is NaN stops after one evaluation; the others run on and converge."""
    data = _data()
    poison = np.array([0.0, np.nan, 0.0])[:, None]
    f = lambda z: _cell(np, data["W"])(z, (data["x"], data["r"])) + poison
    loop, _ = reversible.forward(NumpyOps(), f, data["z0"], BETA, Stop(rtol=1e-6), 201)
    assert loop.status.tolist() == [int(Result.SUCCESSFUL), int(Result.NONFINITE), int(Result.SUCCESSFUL)]
    assert loop.nstep[1] == 1 and (loop.nstep[[0, 2]] > 1).all()


def test_backward_of_an_affine_map_matches_finite_differences():
    """For ``f(z) = z A^T + x`` the iterate is affine in ``(z0, x)``, so finite differences are exact."""
    data = _data()
    A, x, z0, g = 0.9 * data["W"], data["x"], data["z0"], data["c"]
    stop, max_iter = Stop(rtol=0.0), 41

    def z_last(z0, x):
        return reversible.forward(NumpyOps(), lambda z: z @ A.T + x, z0, BETA, stop, max_iter)[0].z

    loop, y_last = reversible.forward(NumpyOps(), lambda z: z @ A.T + x, z0, BETA, stop, max_iter)
    vjp = lambda point, cot, acc: (point @ A.T + x, cot @ A, acc + cot)
    z0_bar, x_bar = reversible.backward(NumpyOps(), vjp, loop.z, y_last, loop.nstep, g, 0 * x, BETA, max_iter)
    basis = np.eye(z0.size).reshape(-1, *z0.shape)
    fd = lambda move: np.array([np.sum(g * (move(e) - loop.z)) for e in basis]).reshape(z0.shape)
    _assert_close(z0_bar, fd(lambda e: z_last(z0 + e, x)), 1e-8)
    _assert_close(x_bar, fd(lambda e: z_last(z0, x + e)), 1e-8)


# --- PyTorch ----------------------------------------------------------------------------------------------


def _torch_problem(data, dtype_name: str = "float64"):
    """``torch``, ``solve_reversible`` and the data as tensors, ``W``, ``x`` and ``z0`` requiring grad."""
    torch, solve_reversible = _backend("torch")
    tensors = {k: torch.tensor(v, dtype=getattr(torch, dtype_name)) for k, v in data.items()}
    for name in ("W", "x", "z0"):
        tensors[name].requires_grad_()
    return torch, solve_reversible, tensors


def _torch_grads(value, t: dict, names=("W", "x", "z0")) -> tuple:
    """Gradients of ``sum(c * value)`` with respect to the named tensors of ``t``."""
    import torch

    return torch.autograd.grad((value * t["c"]).sum(), [t[name] for name in names])


def test_torch_gradient_is_that_of_the_computed_iterate():
    """With a fixed budget (20 steps) the gradients in ``W``, ``x`` and ``z0`` are those of plain autodiff."""
    torch, solve_reversible, t = _torch_problem(_data(rates=(1.0, 1.0, 1.0)))
    f, args = _cell(torch, t["W"]), (t["x"], t["r"])
    value, loop = solve_reversible(f, t["z0"], args, _options(0.0, 41))
    assert (loop.nstep == 41).all()
    expected = _coupled(torch, lambda z: f(z, args), t["z0"], torch.full((3,), 20))
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
    _assert_all_close(_torch_grads(value, t), _torch_grads(expected, t))


def test_torch_gradient_with_per_sample_step_counts():
    """Samples that stop after different numbers of steps each get the gradient of their own iterate."""
    torch, solve_reversible, t = _torch_problem(_data(rates=(0.1, 0.5, 1.0)))
    f, args = _cell(torch, t["W"]), (t["x"], t["r"])
    value, loop = solve_reversible(f, t["z0"], args, _options(1e-4, 201))
    assert len(set(loop.nstep.tolist())) == 3 and bool(loop.converged.all())
    expected = _coupled(torch, lambda z: f(z, args), t["z0"], (loop.nstep - 1) // 2)
    _assert_all_close(_torch_grads(value, t), _torch_grads(expected, t))


def test_torch_gradient_is_the_fixed_points_when_converged():
    """Converged tightly, the gradient in ``W`` and ``x`` is that of the fixed point (long unrolling)."""
    torch, solve_reversible, t = _torch_problem(_data())
    f, args = _cell(torch, t["W"]), (t["x"], t["r"])
    value, loop = solve_reversible(f, t["z0"], args, _options(1e-13, 401))
    assert bool(loop.converged.all())
    expected = _unrolled(lambda z: f(z, args), t["z0"])
    _assert_all_close(_torch_grads(value, t, ("W", "x")), _torch_grads(expected, t, ("W", "x")))


def test_torch_memory_does_not_grow_with_iterations():
    """Autograd saves the same bytes for 10 and for 200 coupled steps."""
    torch, solve_reversible, t = _torch_problem(_data(batch=3, d=32), "float32")
    f, args = _cell(torch, t["W"]), (t["x"], t["r"])

    def saved(max_iter: int) -> int:
        def solve():
            value, loop = solve_reversible(f, t["z0"], args, _options(0.0, max_iter))
            assert value.requires_grad and (loop.nstep == max_iter).all()

        from deq_core.torch.memory import saved_bytes

        return saved_bytes(solve)

    assert saved(21) == saved(401) > 0


def test_torch_reaches_module_parameters_and_graphs_f_closes_over():
    """``.backward()`` fills a module's parameters, and a leaf that a closed-over ``W`` is computed from."""
    torch, solve_reversible, t = _torch_problem(_data())
    args = (t["x"], t["r"])

    class Cell(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W = torch.nn.Parameter(t["W"].detach().clone())

        def forward(self, z, args):
            return _cell(torch, self.W)(z, args)

    cell = Cell()
    value, loop = solve_reversible(cell, t["z0"], args, _options(1e-10, 201))
    (value * t["c"]).sum().backward()
    expected = _coupled(torch, lambda z: _cell(torch, t["W"])(z, args), t["z0"], (loop.nstep - 1) // 2)
    (want,) = _torch_grads(expected, t, ("W",))
    _assert_close(cell.W.grad, want, 1e-6)

    root = t["W"].detach().clone().requires_grad_()
    W = 2 * root  # a non-leaf built outside f: its graph serves every step of the walk
    value, _ = solve_reversible(_cell(torch, W / 2), t["z0"], args, _options(1e-10, 201))
    (value * t["c"]).sum().backward()
    _assert_close(root.grad, want, 1e-6)


def test_torch_backward_evaluates_f_under_the_forwards_autocast():
    """Under ``torch.autocast`` the walk rebuilds the bfloat16 forward's iterates, so the gradient holds."""
    torch, solve_reversible, t = _torch_problem(_data(batch=4, d=16, rates=(1.0,) * 4), "float32")
    f, args = _cell(torch, t["W"]), (t["x"], t["r"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value, loop = solve_reversible(f, t["z0"], args, _options(0.0, 41))
        expected = _coupled(torch, lambda z: f(z, args).float(), t["z0"], torch.full((4,), 20))
        _assert_all_close(_torch_grads(value, t, ("W", "x")), _torch_grads(expected, t, ("W", "x")), 1e-3)


def test_torch_device_style_loops_change_nothing():
    """Checking for termination every few steps, without host shortcuts (as on a GPU), gives the same bits."""
    torch, _ = _backend("torch")
    from deq_core.torch.ops import TorchOps

    data = {k: torch.tensor(v) for k, v in _data(batch=4, rates=(0.1, 0.5, 0.9, 1.0)).items()}
    f = lambda z: _cell(torch, data["W"])(z, (data["x"], data["r"]))

    def vjp(point, cotangent, acc):
        point = point.detach().requires_grad_()
        with torch.enable_grad():
            out = f(point)
        return out.detach(), torch.autograd.grad(out, point, cotangent)[0], acc + cotangent.sum()

    def run(ops):
        loop, y = reversible.forward(ops, f, data["z0"], BETA, Stop(rtol=1e-6), 101)
        grad = reversible.backward(ops, vjp, loop.z, y, loop.nstep, data["c"], torch.zeros(()), BETA, 101)
        return loop.z, loop.nstep, loop.status, loop.abs_residual, *grad

    expected = run(TorchOps())
    assert len(set(expected[1].tolist())) == 4
    for got, want in zip(run(TorchOps(check_every=4, cpu=False)), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_torch_keeps_shape_and_dtype_and_skips_autograd_under_no_grad():
    """A float32 ``z0`` of shape ``(2, 3, 4)`` gives a float32 value of that shape; ``no_grad`` keeps none."""
    torch, solve_reversible = _backend("torch")
    W = torch.nn.Parameter(0.5 * torch.eye(4))
    f = lambda z, x: torch.tanh(z @ W.T + x)
    z0, x = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    value, loop = solve_reversible(f, z0, x, _options(1e-5, 50))
    assert value.shape == (2, 3, 4) and value.dtype == torch.float32 and value.requires_grad
    assert loop.z.shape == (2, 12) and bool(loop.converged.all())
    with torch.no_grad():
        value, _ = solve_reversible(f, z0, x, _options(1e-5, 50))
    assert not value.requires_grad


# --- JAX --------------------------------------------------------------------------------------------------


@pytest.fixture
def x64():
    """JAX in float64 for one test, restoring the previous setting afterwards."""
    pytest.importorskip("jax")
    with jax_x64():
        yield


def _jax_grads(loss, params):
    """``jax.grad`` of ``loss`` with respect to every one of ``params``."""
    import jax

    return jax.grad(loss, argnums=tuple(range(len(params))))(*params)


def test_jax_gradient_is_that_of_the_computed_iterate(x64):
    """Under ``jit``, the gradients in ``W``, ``x`` and ``z0`` are those of autodiff through the loop."""
    jnp, solve_reversible = _backend("jax")
    import jax

    t = {k: jnp.asarray(v) for k, v in _data(rates=(1.0, 1.0, 1.0)).items()}

    def loss(W, x, z0):
        value, _ = solve_reversible(_cell(jnp, W), z0, (x, t["r"]), _options(0.0, 41))
        return jnp.sum(value * t["c"])

    def reference(W, x, z0):
        return jnp.sum(_coupled(jnp, lambda z: _cell(jnp, W)(z, (x, t["r"])), z0, jnp.full(3, 20)) * t["c"])

    params = (t["W"], t["x"], t["z0"])
    np.testing.assert_allclose(jax.jit(loss)(*params), reference(*params), rtol=1e-12)
    _assert_all_close(jax.jit(lambda *p: _jax_grads(loss, p))(*params), _jax_grads(reference, params))


def test_jax_gradient_with_per_sample_step_counts(x64):
    """Samples that stop after different numbers of steps each get the gradient of their own iterate."""
    jnp, solve_reversible = _backend("jax")
    t = {k: jnp.asarray(v) for k, v in _data(rates=(0.1, 0.5, 1.0)).items()}
    options = _options(1e-4, 201)
    _, loop = solve_reversible(_cell(jnp, t["W"]), t["z0"], (t["x"], t["r"]), options)
    assert len(set(loop.nstep.tolist())) == 3 and bool(loop.converged.all())

    def loss(W, x, z0):
        return jnp.sum(solve_reversible(_cell(jnp, W), z0, (x, t["r"]), options)[0] * t["c"])

    def reference(W, x, z0):
        f = lambda z: _cell(jnp, W)(z, (x, t["r"]))
        return jnp.sum(_coupled(jnp, f, z0, (loop.nstep - 1) // 2) * t["c"])

    params = (t["W"], t["x"], t["z0"])
    _assert_all_close(_jax_grads(loss, params), _jax_grads(reference, params))


def test_jax_gradient_is_the_fixed_points_when_converged(x64):
    """Converged tightly, the gradient in ``W`` and ``x`` is that of the fixed point (long unrolling)."""
    jnp, solve_reversible = _backend("jax")
    t = {k: jnp.asarray(v) for k, v in _data().items()}
    options = _options(1e-13, 401)
    _, loop = solve_reversible(_cell(jnp, t["W"]), t["z0"], (t["x"], t["r"]), options)
    assert bool(loop.converged.all())

    def loss(W, x):
        return jnp.sum(solve_reversible(_cell(jnp, W), t["z0"], (x, t["r"]), options)[0] * t["c"])

    def reference(W, x):
        return jnp.sum(_unrolled(lambda z: _cell(jnp, W)(z, (x, t["r"])), t["z0"]) * t["c"])

    params = (t["W"], t["x"])
    _assert_all_close(_jax_grads(loss, params), _jax_grads(reference, params))


def test_jax_filter_grad_of_a_module_under_jit():
    """``eqx.filter_jit(eqx.filter_grad(...))`` of an ``eqx.Module`` cell gives the eager gradient."""
    jnp, solve_reversible = _backend("jax")
    import equinox as eqx
    import jax

    class Cell(eqx.Module):
        W: jax.Array

        def __call__(self, z, args):
            return _cell(jnp, self.W)(z, args)

    t = {k: jnp.asarray(v, jnp.float32) for k, v in _data().items()}  # float32 even with x64 enabled
    cell, args, z0, c = Cell(t["W"]), (t["x"], t["r"]), t["z0"], t["c"]

    options = _options(1e-5, 101)
    _, loop = solve_reversible(cell, z0, args, options)

    def loss(cell):
        return jnp.sum(solve_reversible(cell, z0, args, options)[0] * c)

    def reference(cell):
        return jnp.sum(_coupled(jnp, lambda z: cell(z, args), z0, (loop.nstep - 1) // 2) * c)

    jitted = eqx.filter_jit(eqx.filter_grad(loss))(cell)
    assert jitted.W.dtype == jnp.float32
    np.testing.assert_allclose(jitted.W, eqx.filter_grad(loss)(cell).W, rtol=1e-5, atol=1e-6)
    _assert_close(jitted.W, eqx.filter_grad(reference)(cell).W, 1e-3)


# --- both ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_diverging_map_is_not_converged(backend):
    """``f(z) = 2 z + 1`` stops as diverged within the budget."""
    xp, solve_reversible = _backend(backend)
    _, loop = solve_reversible(lambda z, _: 2 * z + 1, xp.zeros((2, 4)), None, _options(1e-5, 200))
    assert not bool(loop.converged.any())
    assert (np.asarray(loop.status) == int(Result.DIVERGED)).all()
    assert (np.asarray(loop.nstep) < 200).all()
