"""The engine's batched restarted GMRES on every installed backend: budget, early exit, stopping rule.

Each backend runs ``gmres`` directly on small dense systems (JAX under ``jit``, so shapes stay static)
with a matvec that counts its calls; ``Run.calls`` is the number of batched products it performed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from deq_core.config import GMRES, Stop
from deq_core.engine.adjoint import solve_adjoint
from deq_core.engine.gmres import gmres
from deq_core.engine.numpy_ops import NumpyOps
from deq_core.solution import Result
from deq_core.testing.fixtures import jax_x64

SUCCESSFUL, MAX_STEPS, NONFINITE = (
    int(Result.SUCCESSFUL),
    int(Result.MAX_STEPS_REACHED),
    int(Result.NONFINITE),
)


@dataclass
class Run:
    """A solve's result as numpy arrays, and how many times the matvec was called."""

    x: np.ndarray
    nstep: np.ndarray
    abs_residual: np.ndarray
    rel_residual: np.ndarray
    status: np.ndarray
    calls: int


class NumpyRunner:
    """Runs ``gmres`` with :class:`NumpyOps`."""

    def run(self, A: np.ndarray, b: np.ndarray, restart: int, stop: Stop, max_iter: int, c=None) -> Run:
        """Solve ``A x + c = b`` per sample (``c`` defaults to zero, making the operator linear)."""
        c = np.zeros_like(b) if c is None else c
        calls = [0]

        def matvec(x):
            calls[0] += 1
            return np.einsum("bij,bj->bi", A, x) + c

        out = gmres(NumpyOps(), matvec, b, restart, stop, max_iter)
        return Run(out.z, out.nstep, out.abs_residual, out.rel_residual, out.status, calls[0])


class TorchRunner:
    """Runs ``gmres`` with :class:`~deq_core.torch.ops.TorchOps` on CPU tensors."""

    def __init__(self) -> None:
        self.torch = pytest.importorskip("torch")
        from deq_core.torch.ops import TorchOps

        self.ops = TorchOps(differentiable=False, check_every=1, compact=False, cpu=True)

    def run(self, A: np.ndarray, b: np.ndarray, restart: int, stop: Stop, max_iter: int, c=None) -> Run:
        """Solve ``A x + c = b`` per sample."""
        torch = self.torch
        A_t, b_t = torch.as_tensor(A), torch.as_tensor(b)
        c_t = torch.zeros_like(b_t) if c is None else torch.as_tensor(c)
        calls = [0]

        def matvec(x):
            calls[0] += 1
            return torch.einsum("bij,bj->bi", A_t, x) + c_t

        out = gmres(self.ops, matvec, b_t, restart, stop, max_iter)
        arrays = [np.asarray(v) for v in (out.z, out.nstep, out.abs_residual, out.rel_residual, out.status)]
        return Run(*arrays, calls[0])


class JaxRunner:
    """Runs ``gmres`` with :class:`~deq_core.jax.ops.JaxOps` under ``jax.jit``.

    The matvec counts its executions (not its traces) through ``jax.debug.callback``.
    """

    def __init__(self) -> None:
        self.jax = pytest.importorskip("jax")
        from deq_core.jax.ops import JaxOps

        self.ops = JaxOps(differentiable=False)

    def run(self, A: np.ndarray, b: np.ndarray, restart: int, stop: Stop, max_iter: int, c=None) -> Run:
        """Solve ``A x + c = b`` per sample."""
        jax, jnp = self.jax, self.jax.numpy
        c = np.zeros_like(b) if c is None else c
        calls = [0]

        def count() -> None:
            calls[0] += 1

        @jax.jit
        def solve(A, b, c):
            def matvec(x):
                jax.debug.callback(count, ordered=True)
                return jnp.einsum("bij,bj->bi", A, x) + c

            out = gmres(self.ops, matvec, b, restart, stop, max_iter)
            return out.z, out.nstep, out.abs_residual, out.rel_residual, out.status

        arrays = [np.asarray(v) for v in solve(jnp.asarray(A), jnp.asarray(b), jnp.asarray(c))]
        jax.effects_barrier()
        return Run(*arrays, calls[0])


@pytest.fixture(params=["numpy", "torch", "jax"])
def runner(request) -> Iterator[Any]:
    """A runner for each installed backend; JAX runs with float64 enabled, restored afterwards."""
    if request.param == "numpy":
        yield NumpyRunner()
    elif request.param == "torch":
        yield TorchRunner()
    else:
        pytest.importorskip("jax")
        with jax_x64():
            yield JaxRunner()


def _random_system(batch: int, n: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-symmetric ``I + spread * G / sqrt(n)`` per sample, and a right-hand side."""
    rng = np.random.default_rng(seed)
    A = np.eye(n)[None] + spread * rng.standard_normal((batch, n, n)) / np.sqrt(n)
    return A, rng.standard_normal((batch, n))


def _with_eigenvalues(eigenvalues: list[list[float]], n: int, seed: int = 0) -> np.ndarray:
    """Symmetric matrices ``Q diag(lambda) Q^T``, sample ``i`` cycling through ``eigenvalues[i]``."""
    rng = np.random.default_rng(seed)
    mats = []
    for values in eigenvalues:
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        mats.append(q @ np.diag(np.resize(values, n)) @ q.T)
    return np.stack(mats)


def _planned_calls(restart: int, max_iter: int) -> int:
    """Calls a solve that never stops early makes: cycles of ``k`` steps and a check, the last truncated."""
    used = 0
    while max_iter - used >= 2:
        used += min(restart, max_iter - used - 1) + 1
    return used


@pytest.mark.parametrize(
    "restart, max_iter", [(20, 8), (5, 23), (5, 24), (1, 7), (3, 2), (3, 1), (4, 4), (7, 15), (8, 9)]
)
def test_matvec_budget_never_exceeded(runner, restart, max_iter):
    """Every call counts, the initial residual and the final check included; the last cycle is truncated."""
    A, b = _random_system(batch=3, n=40, spread=0.9)
    out = runner.run(A, b, restart, Stop(rtol=1e-14), max_iter)
    assert out.calls <= max_iter
    assert out.calls == _planned_calls(restart, max_iter)
    np.testing.assert_array_equal(out.nstep, out.calls)  # every sample used every call
    np.testing.assert_array_equal(out.status, MAX_STEPS)


def test_early_exit_mid_cycle(runner):
    """A sample stops at its minimal polynomial's degree; the batch stops when the last one does."""
    A = _with_eigenvalues([[1.0, 2.0, 3.0], [0.5, 1.5], [1.0, 2.0, 3.0, 4.0, 5.0]], n=30)
    b = np.random.default_rng(1).standard_normal((3, 30))
    out = runner.run(A, b, restart=20, stop=Stop(rtol=1e-10), max_iter=50)
    np.testing.assert_array_equal(out.status, SUCCESSFUL)
    np.testing.assert_array_equal(out.nstep, [3 + 1, 2 + 1, 5 + 1])  # Arnoldi steps + the true-residual check
    assert out.calls == 5 + 1
    np.testing.assert_allclose(out.x, np.linalg.solve(A, b[..., None])[..., 0], rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "stop",
    [Stop(rtol=1e-8), Stop(rtol=0.0, atol=1e-3), Stop(rtol=1e-3, atol=1e-2), Stop(rtol=1e-6, norm="inf")],
    ids=repr,
)
def test_stop_rule_on_true_residual(runner, stop):
    """Converged when ``||b - A x|| <= atol + rtol * ||b||`` in ``stop.norm``, recomputed from ``x``."""
    A, b = _random_system(batch=4, n=25, spread=0.8, seed=2)
    b = b * np.array([1.0, 10.0, 0.1, 3.0])[:, None]
    out = runner.run(A, b, restart=6, stop=stop, max_iter=200)
    order = 2 if stop.norm == 2 else np.inf
    true_res = np.linalg.norm(b - np.einsum("bij,bj->bi", A, out.x), ord=order, axis=1)
    b_norm = np.linalg.norm(b, ord=order, axis=1)
    np.testing.assert_allclose(out.abs_residual, true_res, rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(out.rel_residual, true_res / b_norm, rtol=1e-8, atol=1e-15)
    np.testing.assert_array_equal(out.status, SUCCESSFUL)
    assert np.all(true_res <= stop.atol + stop.rtol * b_norm)


def test_looser_rule_stops_sooner(runner):
    """A loose absolute tolerance takes fewer matvecs than a tight relative one; one met at ``x = 0`` none."""
    A, b = _random_system(batch=2, n=30, spread=0.8, seed=3)
    tight = runner.run(A, b, restart=10, stop=Stop(rtol=1e-12), max_iter=200)
    loose = runner.run(A, b, restart=10, stop=Stop(rtol=0.0, atol=1e-2), max_iter=200)
    trivial = runner.run(A, b, restart=10, stop=Stop(rtol=0.0, atol=1e3), max_iter=200)
    for out in (tight, loose, trivial):
        np.testing.assert_array_equal(out.status, SUCCESSFUL)
    assert np.all(loose.nstep < tight.nstep)
    np.testing.assert_array_equal(trivial.nstep, 0)
    assert trivial.calls == 0
    np.testing.assert_array_equal(trivial.x, 0.0)


def test_convergence_decided_on_true_residual(runner):
    """An affine "operator" fools the Givens estimate: the status follows the true residual, and a restart
    from the true residual recovers."""
    A = _with_eigenvalues([[1.0, 2.0, 3.0]] * 2, n=30)
    b = np.random.default_rng(1).standard_normal((2, 30))
    c = np.zeros_like(b)
    c[0] = 1e-6 * np.random.default_rng(5).standard_normal(30)  # sample 1 stays linear
    stop = Stop(rtol=1e-10)
    short = runner.run(A, b, restart=20, stop=stop, max_iter=8, c=c)
    assert short.calls < _planned_calls(20, 8)  # a cycle stopped early on its estimate ...
    np.testing.assert_array_equal(short.status, [MAX_STEPS, SUCCESSFUL])  # ... yet sample 0 missed the rule
    np.testing.assert_array_equal(short.nstep, [short.calls, 3 + 1])
    long = runner.run(A, b, restart=20, stop=stop, max_iter=30, c=c)
    np.testing.assert_array_equal(long.status, SUCCESSFUL)
    for out in (short, long):
        true_res = np.linalg.norm(b - np.einsum("bij,bj->bi", A, out.x) - c, axis=1)
        np.testing.assert_allclose(out.abs_residual, true_res, rtol=1e-6, atol=1e-15)
        np.testing.assert_array_equal(
            out.status == SUCCESSFUL, true_res <= stop.rtol * np.linalg.norm(b, axis=1)
        )


@pytest.mark.parametrize("restart", [4, 12, 40])
def test_solution_matches_numpy_solve(runner, restart):
    """In float64 the solution matches a dense solve, with or without restarts."""
    A, b = _random_system(batch=3, n=12, spread=0.7, seed=6)
    out = runner.run(A, b, restart=restart, stop=Stop(rtol=1e-14), max_iter=300)
    np.testing.assert_array_equal(out.status, SUCCESSFUL)
    np.testing.assert_allclose(out.x, np.linalg.solve(A, b[..., None])[..., 0], rtol=0, atol=1e-10)
    assert np.all(out.nstep <= out.calls) and out.calls <= 300


def test_nonconvergence_reported(runner):
    """Too small a budget: every sample ends ``MAX_STEPS_REACHED`` with its true residual, above the rule."""
    A, b = _random_system(batch=2, n=30, spread=0.9, seed=7)
    stop = Stop(rtol=1e-10)
    out = runner.run(A, b, restart=20, stop=stop, max_iter=4)
    np.testing.assert_array_equal(out.status, MAX_STEPS)
    np.testing.assert_array_equal(out.nstep, 4)
    assert out.calls == 4
    assert np.all(out.rel_residual > stop.rtol) and np.all(np.isfinite(out.abs_residual))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nonfinite_reported_per_sample(runner):
    """NaN in ``b`` costs no matvec; NaN from the operator stops that sample at its first check."""
    A, b = _random_system(batch=3, n=10, spread=0.5, seed=8)
    b[0, 3] = np.nan
    A[2, 1, 4] = np.inf
    out = runner.run(A, b, restart=5, stop=Stop(rtol=1e-12), max_iter=100)
    np.testing.assert_array_equal(out.status, [NONFINITE, SUCCESSFUL, NONFINITE])
    assert out.nstep[0] == 0 and out.nstep[2] == 1 + 1
    np.testing.assert_allclose(out.x[1], np.linalg.solve(A[1], b[1]), rtol=0, atol=1e-10)


def test_adjoint_gmres_follows_stop():
    """``solve_adjoint`` hands GMRES the whole rule and the budget."""
    A, g = _random_system(batch=2, n=15, spread=0.6, seed=9)
    J = np.eye(15)[None] - A  # (I - J^T) y = g  with  I - J^T = A^T
    vjp = lambda y: np.einsum("bji,bj->bi", J, y)
    out = solve_adjoint(NumpyOps(), vjp, g, GMRES(restart=5), Stop(rtol=1e-12), 100)
    np.testing.assert_array_equal(out.status, SUCCESSFUL)
    expected = np.linalg.solve(np.swapaxes(A, 1, 2), g[..., None])[..., 0]
    np.testing.assert_allclose(out.z, expected, rtol=0, atol=1e-10)
    short = solve_adjoint(NumpyOps(), vjp, g, GMRES(restart=20), Stop(rtol=1e-12), 6)
    assert np.all(short.nstep == 6) and not np.any(short.converged)


@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_float32(name):
    """In float32 (JAX without x64) the solve converges and keeps its dtype."""
    runner = {"numpy": NumpyRunner, "torch": TorchRunner, "jax": JaxRunner}[name]()
    A, b = _random_system(batch=2, n=16, spread=0.6, seed=10)
    A, b = A.astype(np.float32), b.astype(np.float32)
    out = runner.run(A, b, restart=8, stop=Stop(rtol=1e-5), max_iter=60)
    np.testing.assert_array_equal(out.status, SUCCESSFUL)
    assert out.x.dtype == np.float32
    np.testing.assert_allclose(out.x, np.linalg.solve(A, b[..., None])[..., 0], rtol=0, atol=1e-4)
