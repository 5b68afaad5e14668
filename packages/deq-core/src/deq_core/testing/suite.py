"""The conformance checks. A backend's test module does ``from deq_core.testing.suite import *`` and
provides a ``backend`` fixture (an adapter from :mod:`deq_core.testing.backends`).

Values are checked against closed forms and long float64 Picard references computed in numpy, and
iteration counts against the same engine run on numpy, so two backends that pass agree with each other.
"""

from __future__ import annotations

import numpy as np
import pytest

from deq_core import JFB, Anderson, Broyden, ConfigError, Implicit, Phantom, Picard, Result, Stop, Unroll
from deq_core.engine import iterate, make_solver
from deq_core.testing import problems
from deq_core.testing.numpy_ops import NumpyOps

SOLVERS = [Picard(), Picard(damping=0.7), Anderson(), Anderson(memory=3, damping=0.8), Broyden()]
ADJOINTS = ["picard", "anderson", "broyden", "gmres"]

__all__ = [
    "test_values_match_references",
    "test_iteration_counts_match_numpy_engine",
    "test_per_sample_convergence",
    "test_nonconvergence_reported",
    "test_throw_raises",
    "test_implicit_gradient_matches_finite_differences",
    "test_backward_modes_against_unroll",
    "test_jfb_is_one_step_gradient",
    "test_module_cell_gradient",
    "test_test_time_budget_overrides_training_budget",
    "test_config_errors",
    "test_bad_inputs",
    "test_half_precision_cell_converges",
]


def _solve(backend, problem, dtype="float64", **options):
    f = problem.make_f(backend.xp)
    params = {k: backend.asarray(v, dtype) for k, v in problem.params.items()}
    z0, x = backend.asarray(problem.z0, dtype), backend.asarray(problem.args, dtype)
    return backend.fixed_point(lambda z, a: f(z, a, params), z0, x, **options)


@pytest.mark.parametrize("problem", problems.catalogue(), ids=lambda p: p.name)
@pytest.mark.parametrize("solver", SOLVERS, ids=repr)
def test_values_match_references(backend, problem, solver):
    """Every solver reaches the closed-form / reference fixed point, and reports the residual it reached."""
    sol = _solve(backend, problem, solver=solver, tol=1e-10, max_iter=500)
    assert int(sol.result) == Result.SUCCESSFUL
    np.testing.assert_allclose(backend.numpy(sol.value), problem.reference(), rtol=0, atol=1e-8)
    assert np.all(backend.numpy(sol.stats.rel_residual) <= 1e-10)
    assert np.all(backend.numpy(sol.stats.converged))


@pytest.mark.parametrize("problem", problems.catalogue(), ids=lambda p: p.name)
@pytest.mark.parametrize("solver", SOLVERS, ids=repr)
def test_iteration_counts_match_numpy_engine(backend, problem, solver):
    """In float64 the backend takes the same number of steps per sample as the engine on numpy."""
    f = problem.make_f(np)
    flat = lambda z: f(z.reshape(problem.z0.shape), problem.args, problem.params).reshape(len(z), -1)
    ref = iterate(
        NumpyOps(), flat, problem.z0.reshape(len(problem.z0), -1), make_solver(solver), Stop(1e-8), 500
    )
    sol = _solve(backend, problem, solver=solver, tol=1e-8, max_iter=500)
    np.testing.assert_allclose(backend.numpy(sol.stats.nstep), ref.nstep, atol=1)


def test_per_sample_convergence(backend):
    """Samples stop on their own: slower contraction costs more steps; a stopped sample's trace is NaN."""
    problem = problems.per_sample_rates()
    sol = _solve(backend, problem, solver="picard", tol=1e-10, max_iter=2000)
    nstep = backend.numpy(sol.stats.nstep)
    assert np.all(np.diff(nstep) > 0), nstep
    trace = backend.numpy(sol.stats.trace)
    assert trace.shape == (2000, len(nstep))
    for i, n in enumerate(nstep):
        assert np.all(np.isfinite(trace[:n, i])) and np.all(np.isnan(trace[n:, i]))
    for name in ("nstep", "abs_residual", "rel_residual", "converged"):
        assert getattr(sol.stats, name).shape == (len(nstep),)


@pytest.mark.parametrize("solver", SOLVERS, ids=repr)
def test_nonconvergence_reported(backend, solver):
    """A map without a fixed point is reported as not converged (never as success).

    The absolute rule is used: a quasi-Newton step can jump far enough that a relative residual looks small.
    """
    sol = _solve(backend, problems.divergent(), solver=solver, stop="abs", tol=1e-6, max_iter=30)
    assert int(sol.result) in (Result.MAX_STEPS_REACHED, Result.NONFINITE)
    assert not np.any(backend.numpy(sol.stats.converged))


def test_throw_raises(backend):
    """``throw=True`` raises, naming how many samples failed."""
    with pytest.raises(backend.raises_not_converged(), match="did not converge for 3 of 3 samples"):
        sol = _solve(backend, problems.divergent(), tol=1e-6, max_iter=10, throw=True)
        backend.numpy(sol.value)  # JAX raises when the value is materialised


def _loss(backend, problem, **options):
    f = problem.make_f(backend.xp)

    def loss(p):
        x, rest = p["x"], {k: v for k, v in p.items() if k != "x"}
        sol = backend.fixed_point(lambda z, a: f(z, a, rest), backend.asarray(problem.z0), x, **options)
        return (sol.value**2).sum() + (sol.value * x).sum()

    return loss


@pytest.mark.parametrize("adjoint", ADJOINTS)
def test_implicit_gradient_matches_finite_differences(backend, adjoint):
    """Implicit gradients (every adjoint solver) match central finite differences of the reference solve."""
    problem = problems.tanh(batch=2, d=6)
    params = {**problem.params, "x": problem.args}
    _, grads = backend.value_and_grad(
        _loss(backend, problem, backward=Implicit(solver=adjoint), tol=1e-12, max_iter=300), dict(params)
    )

    def ref_loss(p):
        q = problems.Problem("fd", problem.make_f, {"W": p["W"]}, p["x"], problem.z0)
        z = q.reference(tol=1e-15)
        return (z**2).sum() + (z * p["x"]).sum()

    rng = np.random.default_rng(0)
    for name, value in params.items():
        direction = rng.standard_normal(value.shape)
        eps = 1e-6
        plus = ref_loss({**params, name: value + eps * direction})
        minus = ref_loss({**params, name: value - eps * direction})
        fd = (plus - minus) / (2 * eps)
        np.testing.assert_allclose((grads[name] * direction).sum(), fd, rtol=1e-6)


@pytest.mark.parametrize(
    "backward, rtol",
    [
        (Unroll(), 1e-9),
        (Implicit(), 1e-7),
        (Implicit(solver="gmres"), 1e-7),
        (Phantom(steps=200, tau=0.5), 1e-7),
    ],
    ids=repr,
)
def test_backward_modes_against_unroll(backend, backward, rtol):
    """Exact modes match long unrolled autograd; many damped phantom steps converge to the same gradient."""
    problem = problems.tanh(batch=3, d=8)
    params = {**problem.params, "x": problem.args}
    _, ref = backend.value_and_grad(
        _loss(backend, problem, backward="unroll", solver="picard", tol=1e-14, max_iter=400), dict(params)
    )
    _, got = backend.value_and_grad(
        _loss(backend, problem, backward=backward, tol=1e-12, max_iter=400), dict(params)
    )
    for name in params:
        np.testing.assert_allclose(got[name], ref[name], rtol=rtol, atol=rtol * np.abs(ref[name]).max())


def test_jfb_is_one_step_gradient(backend):
    """JFB's gradient is the gradient of one application of ``f`` at the detached fixed point."""
    problem = problems.linear(batch=2, d=5, rate=0.5)
    params = {"A": problem.params["A"], "x": problem.args}
    _, got = backend.value_and_grad(
        _loss(backend, problem, backward=JFB(), tol=1e-13, max_iter=200), dict(params)
    )
    z = problem.reference()
    dz = 2 * z + problem.args  # d loss / d z at the fixed point
    np.testing.assert_allclose(got["A"], dz.T @ z, rtol=1e-7)
    np.testing.assert_allclose(got["x"], dz + z, rtol=1e-7)


def test_module_cell_gradient(backend):
    """A DEQ over a framework module (``nn.Module`` / ``eqx.Module``) differentiates to its parameters."""
    problem = problems.tanh(batch=2, d=6)
    x, z0 = backend.asarray(problem.args), backend.asarray(problem.z0)
    W = problem.params["W"]
    implicit = backend.module_grad(backend.deq.DEQ(backend.tanh_module(W), tol=1e-12, max_iter=300), x, z0)
    unrolled = backend.module_grad(
        backend.deq.DEQ(backend.tanh_module(W), backward="unroll", solver="picard", tol=1e-14, max_iter=400),
        x,
        z0,
    )
    np.testing.assert_allclose(implicit, unrolled, rtol=1e-7, atol=1e-9)


def test_test_time_budget_overrides_training_budget(backend):
    """``max_iter`` at call time caps the steps (test-time compute), whatever the training budget was."""
    problem = problems.tanh(rate=0.97)
    deq = backend.deq.DEQ(backend.tanh_module(problem.params["W"]), solver="picard", tol=1e-12, max_iter=200)
    x, z0 = backend.asarray(problem.args), backend.asarray(problem.z0)
    _, short = deq(x, z0, max_iter=3)
    _, long = deq(x, z0)
    assert backend.numpy(short.nstep).max() == 3
    assert backend.numpy(long.nstep).max() > 3


def test_config_errors(backend):
    """Bad configuration fails at construction with a message naming the field."""
    problem = problems.linear()
    with pytest.raises(ConfigError, match="unknown name 'andersen'"):
        _solve(backend, problem, solver="andersen")
    with pytest.raises(ConfigError, match="Stop.tol"):
        _solve(backend, problem, tol=-1.0)
    with pytest.raises(ConfigError, match="Anderson.memory"):
        Anderson(memory=0)
    with pytest.raises(ConfigError, match="max_iter"):
        _solve(backend, problem, max_iter=0)
    with pytest.raises(ConfigError, match="unknown solve option"):
        backend.deq.DEQ(backend.tanh_module(problem.params["A"]), tolerance=1e-3)
    with pytest.raises(ConfigError, match="unknown name 'implict'"):
        _solve(backend, problem, backward="implict")


def test_bad_inputs(backend):
    """A scalar ``z0``, an integer ``z0`` or an ``f`` that changes the shape is a clear error."""
    with pytest.raises(ValueError, match="leading batch dimension"):
        backend.fixed_point(lambda z, a: z, backend.asarray(np.asarray(1.0)), None)
    with pytest.raises(ValueError, match="floating dtype"):
        backend.fixed_point(lambda z, a: z, backend.asarray(np.ones((2, 2)), "int32"), None)
    with pytest.raises(ValueError, match=r"z has shape \(2, 3\), f returned \(2, 4\)"):
        backend.fixed_point(
            lambda z, a: backend.xp.zeros((2, 4), dtype=z.dtype), backend.asarray(np.ones((2, 3))), None
        )


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_cell_converges(backend, dtype):
    """A half-precision cell converges to the precision it allows; the solver's statistics stay float32."""
    problem = problems.tanh(rate=0.8)
    sol = _solve(backend, problem, dtype=dtype, solver=Anderson(), tol=2e-2, max_iter=100)
    assert str(sol.value.dtype).endswith(dtype)
    assert str(sol.stats.rel_residual.dtype).endswith("float32")
    assert np.all(backend.numpy(sol.stats.converged))
    np.testing.assert_allclose(backend.numpy(sol.value).astype(np.float64), problem.reference(), atol=5e-2)
