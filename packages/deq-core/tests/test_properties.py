"""Property-based tests of the engine (hypothesis), over the numpy reference and each installed backend.

Random batch sizes (1 included), dimensions, dtypes and per-sample contraction rates; maps that diverge or
turn NaN in some samples. Invariants: a sample reported converged has a residual, recomputed from the
returned value, that meets the rule; a map without fixed point is never converged; ``nstep <= max_iter``;
the backend agrees with the engine run on numpy in float64 (value and ``nstep``); the three solvers agree
at the fixed point. Example counts are bounded so that CI stays short.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deq_core import Result, Stop
from deq_core.config import solver_config
from deq_core.engine import iterate, make_solver
from deq_core.engine.numpy_ops import NumpyOps

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SOLVERS = ["picard", "anderson", "broyden"]


@st.composite
def contractions(draw):
    """``(W, x, rates)``: ``||W||_2 = 1``, a batch of inputs and one contraction rate per sample."""
    batch = draw(st.integers(1, 5))
    d = draw(st.sampled_from([1, 3, 8]))
    seed = draw(st.integers(0, 2**16))
    rates = draw(st.lists(st.floats(0.0, 0.95), min_size=batch, max_size=batch))
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, d))
    W = W / max(np.linalg.norm(W, 2), 1e-12)
    return W, rng.standard_normal((batch, d)), np.asarray(rates)


def cell(xp, W):
    """``z_i -> r_i tanh(W z_i) + x_i``, where ``a = [x | r]``: a contraction of rate ``r_i`` per sample."""
    return lambda z, a: a[:, -1:] * xp.tanh(z @ W.T) + a[:, :-1]


def numpy_reference(W, a, solver, tol, max_iter):
    """The engine itself, run on numpy in float64."""
    f = cell(np, W)
    z0 = np.zeros((len(a), W.shape[0]))
    return iterate(
        NumpyOps(), lambda z: f(z, a), z0, make_solver(solver_config(solver)), Stop(rtol=tol), max_iter
    )


def _solve(backend, W, a, dtype, **options):
    f = cell(backend.xp, backend.asarray(W, dtype))
    z0 = backend.asarray(np.zeros((len(a), W.shape[0])), dtype)
    return f, backend.fixed_point(f, z0, backend.asarray(a, dtype), **options)


@SETTINGS
@given(problem=contractions(), solver=st.sampled_from(SOLVERS), dtype=st.sampled_from(["float32", "float64"]))
def test_converged_means_recomputed_residual_meets_rule(backend, problem, solver, dtype):
    """``converged`` => ``||f(v) - v|| <= tol ||f(v)||`` for the returned ``v``; and ``nstep <= max_iter``."""
    W, x, rates = problem
    a = np.concatenate([x, rates[:, None]], axis=1)
    tol = 1e-4 if dtype == "float32" else 1e-9
    f, sol = _solve(backend, W, a, dtype, solver=solver, tol=tol, max_iter=400)
    converged = backend.numpy(sol.stats.converged)
    assert np.all(backend.numpy(sol.stats.nstep) <= 400)
    assert converged.all()  # every sample contracts
    v = backend.numpy(sol.value).astype(np.float64)
    fv = backend.numpy(f(sol.value, backend.asarray(a, dtype))).astype(np.float64)
    eps = np.finfo(dtype).eps
    residual = np.linalg.norm(fv - v, axis=1)
    assert np.all(residual <= tol * np.linalg.norm(fv, axis=1) + 10 * eps * (1 + np.linalg.norm(fv, axis=1)))


@SETTINGS
@given(problem=contractions(), solver=st.sampled_from(SOLVERS))
def test_backend_matches_numpy_engine(backend, problem, solver):
    """In float64 the backend returns the numpy engine's value and (to one step) its ``nstep``."""
    W, x, rates = problem
    a = np.concatenate([x, rates[:, None]], axis=1)
    ref = numpy_reference(W, a, solver, 1e-10, 400)
    _, sol = _solve(backend, W, a, "float64", solver=solver, tol=1e-10, max_iter=400)
    np.testing.assert_allclose(backend.numpy(sol.value), ref.z, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(backend.numpy(sol.stats.nstep), ref.nstep, atol=1)
    np.testing.assert_array_equal(backend.numpy(sol.stats.status), ref.status)


@SETTINGS
@given(problem=contractions())
def test_solvers_agree_at_the_fixed_point(backend, problem):
    """Picard, Anderson and Broyden reach the same fixed point, within what the tolerance allows."""
    W, x, rates = problem
    a = np.concatenate([x, rates[:, None]], axis=1)
    values = [
        backend.numpy(_solve(backend, W, a, "float64", solver=s, tol=1e-11, max_iter=600)[1].value)
        for s in SOLVERS
    ]
    scale = 1 + np.abs(values[0]).max()
    for v in values[1:]:
        np.testing.assert_allclose(v, values[0], atol=1e-8 * scale / (1 - rates.max()))


@SETTINGS
@given(
    batch=st.integers(1, 4),
    d=st.sampled_from([1, 4]),
    shift=st.floats(0.1, 3.0),
    solver=st.sampled_from(SOLVERS),
    stop=st.sampled_from(["rel", "abs"]),
)
def test_map_without_fixed_point_never_converges(backend, batch, d, shift, solver, stop):
    """``z + c sqrt(1 + z^2)`` (``c > 0``) has no fixed point, not even in floating point (its residual is at
    least ``c`` and ``c / (1 + c)`` relative to ``f(z)``): never converged, under either rule.

    (``z + c + sin(z) / 2`` would not do here: a quasi-Newton jump to ``|z| > 2^53 c`` lands on a point that
    floating point cannot move, a true fixed point of the computed map.)
    """
    f = lambda z, a: z + a * backend.xp.sqrt(1 + z * z)
    z0 = backend.asarray(np.zeros((batch, d)))
    sol = backend.fixed_point(
        f, z0, backend.asarray(np.full((batch, d), shift)), solver=solver, stop=stop, tol=1e-6, max_iter=60
    )
    assert not backend.numpy(sol.stats.converged).any()
    assert np.all(backend.numpy(sol.stats.nstep) <= 60)


@SETTINGS
@given(problem=contractions(), solver=st.sampled_from(SOLVERS), bad=st.integers(0, 4))
def test_nan_in_one_sample_stays_in_that_sample(backend, problem, solver, bad):
    """A sample whose map returns NaN is ``NONFINITE``; the other samples converge as before."""
    W, x, rates = problem
    bad = bad % len(x)
    a = np.concatenate([x, rates[:, None], (np.arange(len(x)) == bad)[:, None].astype(float)], axis=1)
    Wb = backend.asarray(W)
    xp = backend.xp

    def f(z, a):
        out = a[:, -2:-1] * xp.tanh(z @ Wb.T) + a[:, :-2]
        return out + xp.where(a[:, -1:] > 0, float("nan"), 0.0)

    sol = backend.fixed_point(
        f, backend.asarray(np.zeros(x.shape)), backend.asarray(a), solver=solver, tol=1e-8, max_iter=300
    )
    status = backend.numpy(sol.stats.status)
    assert status[bad] == Result.NONFINITE
    assert np.all(np.delete(status, bad) == Result.SUCCESSFUL)
