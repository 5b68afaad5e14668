"""The conformance checks. A backend's test module does ``from deq_core.testing.suite import *`` and
provides a ``backend`` fixture (an adapter from :mod:`deq_core.testing.backends`).

Values are checked against closed forms and long float64 Picard references computed in numpy, and
iteration counts against the same engine run on numpy, so two backends that pass agree with each other.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from deq_core import (
    JFB,
    Anderson,
    Broyden,
    ConfigError,
    ConvergenceError,
    Implicit,
    Phantom,
    Picard,
    Result,
    Reversible,
    Stop,
    Unroll,
)
from deq_core.engine import iterate, make_solver
from deq_core.engine.numpy_ops import NumpyOps
from deq_core.testing import problems

SOLVERS = [Picard(), Picard(damping=0.7), Anderson(), Anderson(memory=3, damping=0.8), Broyden()]
ADJOINTS = ["picard", "anderson", "broyden", "gmres"]

__all__ = [
    "test_values_match_references",
    "test_iteration_counts_match_numpy_engine",
    "test_per_sample_convergence",
    "test_nonconvergence_reported",
    "test_truthful_results",
    "test_newest_iterate",
    "test_throw_raises",
    "test_adjoint_nonconvergence_reported",
    "test_value_dtype_is_z0s",
    "test_unroll_gradient_reaches_z0",
    "test_implicit_gradient_matches_finite_differences",
    "test_backward_modes_against_unroll",
    "test_reversible_is_the_exact_gradient_of_its_iterate",
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
    sol = _solve(backend, problem, solver="picard", tol=1e-10, max_iter=2000, trace=True)
    nstep = backend.numpy(sol.stats.nstep)
    assert np.all(np.diff(nstep) > 0), nstep
    trace = backend.numpy(sol.stats.trace)
    assert trace.shape == (2000, len(nstep))
    for i, n in enumerate(nstep):
        assert np.all(np.isfinite(trace[:n, i])) and np.all(np.isnan(trace[n:, i]))
    for name in ("nstep", "abs_residual", "rel_residual", "converged"):
        assert getattr(sol.stats, name).shape == (len(nstep),)


@pytest.mark.parametrize("solver", SOLVERS, ids=repr)
@pytest.mark.parametrize("stop", ["rel", "abs"])
def test_nonconvergence_reported(backend, solver, stop):
    """A map without a fixed point is reported as not converged (never as success), under either rule."""
    sol = _solve(backend, problems.divergent(), solver=solver, stop=stop, tol=1e-6, max_iter=30)
    assert int(sol.result) != Result.SUCCESSFUL
    assert not np.any(backend.numpy(sol.stats.converged))


def _recomputed(backend, f, value, args):
    """``||f(v) - v||`` and ``||f(v)||`` per sample, recomputed from a returned value ``v``, in numpy."""
    v = backend.numpy(value).reshape(len(backend.numpy(value)), -1)
    fv = backend.numpy(f(value, args)).reshape(len(v), -1)
    return np.linalg.norm(fv - v, axis=1), np.linalg.norm(fv, axis=1)


@pytest.mark.parametrize("solver", ["picard", "anderson", "broyden"])
@pytest.mark.parametrize("map_name", ["2z+1", "z+1", "nan-at-5"])
def test_truthful_results(backend, solver, map_name):
    """Maps that overflow, grow linearly or turn NaN are never reported converged unless truly solved.

    ``2z + 1`` has the fixed point ``-1``: Picard diverges from it (reported ``DIVERGED``), while Anderson
    and Broyden, which solve linear equations, may find it; whatever is claimed is checked against the
    residual recomputed from the returned value. ``z + 1`` (no fixed point, norm growing linearly) and a
    map without fixed point that turns NaN past ``z = 4.2`` (Picard's fifth step) are never converged, and
    raise with ``throw=True``.
    """
    xp = backend.xp

    def nan_at_5(z, a):  # Picard's fifth call sees z = 4.46 > 4.2, where the log is NaN
        return z + a + 0.5 * xp.sin(z) + 0.0 * xp.log(4.2 - z)

    maps = {"2z+1": lambda z, a: 2 * z + a, "z+1": lambda z, a: z + a, "nan-at-5": nan_at_5}
    f = maps[map_name]
    z0, ones = backend.asarray(np.zeros((4, 64)), "float32"), backend.asarray(np.ones((4, 64)), "float32")
    tol, max_iter = (1e-3, 5000) if map_name == "z+1" else (1e-5, 200)
    sol = backend.fixed_point(f, z0, ones, solver=solver, tol=tol, max_iter=max_iter, stop="rel")
    converged = backend.numpy(sol.stats.converged)
    nstep = backend.numpy(sol.stats.nstep)
    assert np.all(nstep <= max_iter)
    if map_name == "2z+1" and converged.all():
        assert solver != "picard"
        abs_res, scale = _recomputed(backend, f, sol.value, ones)
        assert np.all(abs_res <= tol * scale), abs_res
        np.testing.assert_allclose(backend.numpy(sol.value), -1.0, atol=1e-4)
        return
    assert not converged.any(), (backend.numpy(sol.stats.status), nstep)
    assert int(sol.result) != Result.SUCCESSFUL
    if map_name == "2z+1":
        assert np.all(backend.numpy(sol.stats.status) == Result.DIVERGED)
    if map_name == "nan-at-5" and solver == "picard":
        assert np.all(backend.numpy(sol.stats.status) == Result.NONFINITE)
        assert np.all(nstep == 5)
    with pytest.raises(ConvergenceError, match="did not converge for 4 of 4 samples"):
        backend.fixed_point(f, z0, ones, solver=solver, tol=tol, max_iter=max_iter, throw=True)


def test_newest_iterate(backend):
    """``max_iter=1`` returns ``f(z0)``, and ``nstep`` counts evaluations of ``f`` exactly."""
    calls = {"n": 0}

    def f(z, a):
        calls["n"] += 1
        return backend.xp.tanh(z + a)

    z0 = backend.asarray(np.zeros((3, 5)))
    x = backend.asarray(np.arange(15.0).reshape(3, 5) / 15)
    for max_iter in (1, 2, 7):
        sol = backend.fixed_point(f, z0, x, solver="picard", backward="jfb", tol=0.0, max_iter=max_iter)
        expected = np.zeros((3, 5))
        for _ in range(max_iter):
            expected = np.tanh(expected + backend.numpy(x))
        np.testing.assert_allclose(backend.numpy(sol.value), expected, rtol=1e-12)
        assert np.all(backend.numpy(sol.stats.nstep) == max_iter)


def test_throw_raises(backend):
    """``throw=True`` raises :class:`~deq_core.ConvergenceError`, naming how many samples failed and why."""
    with pytest.raises(ConvergenceError, match="did not converge for 3 of 3 samples"):
        _solve(backend, problems.divergent(), tol=1e-6, max_iter=10, throw=True)


def test_adjoint_nonconvergence_reported(backend):
    """An adjoint solve that misses its tolerance is recorded on the solution and warned about once."""
    problem = problems.tanh(batch=2, d=6, rate=0.99)
    params = {**problem.params, "x": problem.args}
    backward = Implicit(solver="picard", tol=1e-12, max_iter=2)
    solutions = []

    def loss(p):
        f = problem.make_f(backend.xp)
        rest = {k: v for k, v in p.items() if k != "x"}
        sol = backend.fixed_point(
            lambda z, a: f(z, a, rest), backend.asarray(problem.z0), p["x"], backward=backward, tol=1e-10
        )
        solutions.append(sol)
        return (sol.value**2).sum()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own default: once per location
        for _ in range(3):
            backend.value_and_grad(loss, dict(params))
    adjoint = [w for w in caught if "adjoint solve: fixed_point did not converge" in str(w.message)]
    assert len(adjoint) == 1, [str(w.message) for w in caught]  # once per call site, not per step or call
    assert adjoint[0].filename.endswith("backends.py")  # the caller's line, not the framework's
    record = solutions[-1].adjoint
    assert record is not None and not np.any(np.asarray(backend.numpy(record.converged)))
    assert np.all(backend.numpy(record.nstep) <= 2)
    with pytest.raises(ConvergenceError, match="adjoint solve"):
        backward_throw = {"backward": backward, "tol": 1e-10, "throw": True}
        f = problem.make_f(backend.xp)
        backend.value_and_grad(
            lambda p: (
                backend.fixed_point(
                    lambda z, a: f(z, a, {"W": p["W"]}), backend.asarray(problem.z0), p["x"], **backward_throw
                ).value
                ** 2
            ).sum(),
            dict(params),
        )


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
        (Reversible(beta=0.5), 1e-7),
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


@pytest.mark.parametrize("beta", [0.5, 1.5])
def test_reversible_is_the_exact_gradient_of_its_iterate(backend, beta):
    """``Reversible`` gives the gradient of the computed ``z_N``: autodiff through 20 coupled steps.

    (Far more steps than a loose tolerance needs would lose accuracy: undoing a contracting step amplifies
    rounding, which is why the comparison with the fixed point's gradient above runs at beta=0.5 only.)
    """
    problem, steps = problems.tanh(batch=3, d=8), 20
    params = {**problem.params, "x": problem.args}
    f = problem.make_f(backend.xp)

    def unrolled(p):
        y = z = backend.asarray(problem.z0)
        for _ in range(steps):
            y = (1 - beta) * y + beta * f(z, p["x"], {"W": p["W"]})
            z = (1 - beta) * z + beta * f(y, p["x"], {"W": p["W"]})
        return (z**2).sum() + (z * p["x"]).sum()

    options = {"backward": Reversible(beta=beta), "tol": 0.0, "max_iter": 2 * steps + 1}
    _, got = backend.value_and_grad(_loss(backend, problem, **options), dict(params))
    _, ref = backend.value_and_grad(unrolled, dict(params))
    for name in params:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-6, atol=1e-9)


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
    with pytest.raises(ConfigError, match="Stop.rtol"):
        _solve(backend, problem, tol=-1.0)
    with pytest.raises(ConfigError, match="Anderson.memory"):
        Anderson(memory=0)
    with pytest.raises(ConfigError, match="max_iter"):
        _solve(backend, problem, max_iter=0)
    with pytest.raises(ConfigError, match="unknown solve option"):
        backend.deq.DEQ(backend.tanh_module(problem.params["A"]), tolerance=1e-3)
    with pytest.raises(ConfigError, match="unknown name 'implict'"):
        _solve(backend, problem, backward="implict")
    with pytest.raises(ConfigError, match="Anderson.ridge"):
        Anderson(ridge=0.0)
    with pytest.raises(ConfigError, match="max_iter must be <= 2147483647"):
        _solve(backend, problem, max_iter=10**11)
    with pytest.raises(ConfigError, match="conflicts with stop"):
        _solve(backend, problem, tol=1e-5, stop=Stop(rtol=1e-3))
    with pytest.raises(ConfigError, match="Reversible.beta"):
        Reversible(beta=1.0)
    with pytest.raises(ConfigError, match="trace is not recorded by the reversible backward"):
        _solve(backend, problem, backward="reversible", trace=True)


def test_bad_inputs(backend):
    """A scalar ``z0``, an integer ``z0``, an ``f`` that changes the shape or returns something else than
    one array, and a DEQ input whose batch differs from ``z0``'s are clear errors."""
    with pytest.raises(ValueError, match="leading batch dimension"):
        backend.fixed_point(lambda z, a: z, backend.asarray(np.asarray(1.0)), None)
    with pytest.raises(ValueError, match="floating dtype"):
        backend.fixed_point(lambda z, a: z, backend.asarray(np.ones((2, 2)), "int32"), None)
    with pytest.raises(ValueError, match=r"z has shape \(2, 3\), f returned \(2, 4\)"):
        backend.fixed_point(
            lambda z, a: backend.xp.zeros((2, 4), dtype=z.dtype), backend.asarray(np.ones((2, 3))), None
        )
    z0 = backend.asarray(np.ones((2, 3)))
    with pytest.raises(TypeError, match="got tuple .return only the new z, not a tuple."):
        backend.fixed_point(lambda z, a: (z, z), z0, None)
    if backend.name == "torch":  # under JAX tracing f cannot return a numpy array computed from z
        with pytest.raises(TypeError, match="must return one torch.Tensor shaped like z, got ndarray"):
            backend.fixed_point(lambda z, a: np.ones((2, 3)), z0, None)
    problem = problems.tanh(batch=2, d=6)
    deq = backend.deq.DEQ(backend.tanh_module(problem.params["W"]))
    with pytest.raises(ValueError, match="same batch size: z0 has shape .3, 6., x has shape .2, 6."):
        deq(backend.asarray(problem.args), backend.asarray(np.zeros((3, 6))))


@pytest.mark.parametrize("backward", ["implicit", "jfb", "phantom", "unroll", "reversible"])
def test_value_dtype_is_z0s(backend, backward):
    """The value comes back in ``z0``'s dtype whatever ``f`` returns, in every backward mode."""
    x = backend.asarray(np.full((2, 3), 0.5), "float32")
    f = lambda z, a: backend.cast(backend.xp.tanh(0.5 * z + a), "float64")
    sol = backend.fixed_point(f, backend.asarray(np.zeros((2, 3)), "float32"), x, backward=backward)
    assert str(sol.value.dtype).endswith("float32")


def test_unroll_gradient_reaches_z0(backend):
    """``unroll`` differentiates the iterations from ``z0`` too: the chain rule of 5 Picard steps."""
    a = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    z0 = np.full((2, 3), 0.3)
    x = backend.asarray(a)
    options = {"solver": "picard", "backward": "unroll", "tol": 0.0, "max_iter": 5}
    loss = lambda p: (
        backend.fixed_point(lambda z, u: backend.xp.tanh(0.5 * z + u), p["z0"], x, **options).value ** 2
    ).sum()
    _, grads = backend.value_and_grad(loss, {"z0": z0})
    z, chain = z0, np.ones_like(z0)
    for _ in range(5):
        z = np.tanh(0.5 * z + a)
        chain = chain * 0.5 * (1 - z**2)
    np.testing.assert_allclose(grads["z0"], 2 * z * chain, rtol=1e-10)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_cell_converges(backend, dtype):
    """A half-precision cell converges to the precision it allows; the solver's statistics stay float32."""
    problem = problems.tanh(rate=0.8)
    sol = _solve(backend, problem, dtype=dtype, solver=Anderson(), tol=2e-2, max_iter=100)
    assert str(sol.value.dtype).endswith(dtype)
    assert str(sol.stats.rel_residual.dtype).endswith("float32")
    assert np.all(backend.numpy(sol.stats.converged))
    np.testing.assert_allclose(backend.numpy(sol.value).astype(np.float64), problem.reference(), atol=5e-2)
