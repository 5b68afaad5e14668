"""Our restarted PDHG: Netlib accuracy, agreement with GLOP on generated LPs, infeasibility, warm start, and
each backend (float64 and float32) against the numpy reference that runs the same iteration lines."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from _backends import pdhg_solver

from deq_core.testing.fixtures import shared_data
from deq_opt.baselines import LPResult, solve_glop
from deq_opt.baselines.pdhg import PDHGOptions
from deq_opt.baselines.pdhg.reference import solve_pdhg_numpy
from deq_opt.datasets import (
    combinatorial_auction_lp,
    facility_location_lp,
    pagerank_lp,
    pagerank_vector,
    random_lp,
    read_mps,
    set_cover_lp,
)

BACKENDS = ["torch", "jax"]
NETLIB_SMALL = [
    "afiro",
    "adlittle",
    "israel",
    "e226",
    "stair",
    "etamacro",
]  # the Netlib LPs under 1,000 columns


def _rel(a: float, b: float) -> float:
    """Relative difference with a floor of 1 on the scale."""
    return abs(a - b) / max(1.0, abs(b))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NETLIB_SMALL)
def test_netlib_small_objective(backend: str, name: str, lp_data: Path, lp_meta: dict) -> None:
    """PDHG reaches 1e-4 relative objective error on every Netlib instance with under 1,000 columns."""
    solve = pdhg_solver(backend)
    assert lp_meta[name]["cols"] < 1000
    lp = read_mps(lp_data / "instances" / f"{name}.mps")
    res = solve(lp, PDHGOptions(tol=1e-6, max_iter=150_000))
    assert res.status == "optimal"
    assert _rel(res.objective, lp_meta[name]["objective"]) <= 1e-4
    assert max(res.kkt["rel_primal"], res.kkt["rel_dual"], res.kkt["rel_gap"]) <= 1e-6


GENERATED = {
    "random": lambda: random_lp(seed=1),
    "set_cover": lambda: set_cover_lp(30, 60, 0.1, seed=2),
    "auction": lambda: combinatorial_auction_lp(15, 40, seed=3),
    "facility": lambda: facility_location_lp(8, 4, seed=4),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_generated_matches_glop(backend: str, kind: str) -> None:
    """PDHG and GLOP agree to 1e-6 relative objective on a small instance of each generator."""
    solve = pdhg_solver(backend)
    lp = GENERATED[kind]()
    ref = solve_glop(lp)
    assert ref.status == "optimal"
    res = solve(lp, PDHGOptions(tol=1e-9, max_iter=200_000))
    assert res.status == "optimal"
    assert _rel(res.objective, ref.objective) <= 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_pagerank_solution(backend: str) -> None:
    """The PageRank LP's PDHG solution is the power-iteration PageRank vector (objective is zero)."""
    solve = pdhg_solver(backend)
    lp = pagerank_lp(60, 3, seed=5)
    res = solve(lp, PDHGOptions(tol=1e-9, max_iter=100_000))
    assert res.status == "optimal" and solve_glop(lp).status == "optimal"
    np.testing.assert_allclose(res.x, pagerank_vector(60, 3, seed=5), atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_infeasible_detected(backend: str, lp_data: Path) -> None:
    """A primal-infeasible Netlib LP ends with status 'infeasible', not 'optimal'."""
    solve = pdhg_solver(backend)
    res = solve(read_mps(lp_data / "instances" / "galenet.mps"), PDHGOptions(max_iter=20_000))
    assert res.status == "infeasible"


@pytest.mark.parametrize("backend", BACKENDS)
def test_warm_start_from_optimum(backend: str) -> None:
    """Warm-started at GLOP's primal-dual optimum, PDHG stops at the first check."""
    solve = pdhg_solver(backend)
    lp = random_lp(20, 60, 200, seed=7)
    ref = solve_glop(lp, feasibility_tol=1e-10, optimality_tol=1e-10)
    opts = PDHGOptions(tol=1e-6, max_iter=50_000)
    cold = solve(lp, opts)
    warm = solve(lp, opts, x0=ref.x, y0=ref.y)
    assert warm.status == "optimal" and warm.iterations == opts.check_every < cold.iterations


@functools.cache
def _reference(name: str, tol: float, max_iter: int = 100_000) -> LPResult:
    """The numpy reference solve of a Netlib instance (the same iteration lines as every backend)."""
    lp = read_mps(shared_data("lp", marker="instances.json") / "instances" / f"{name}.mps")
    return solve_pdhg_numpy(lp, PDHGOptions(tol=tol, max_iter=max_iter))


def _close_runs(res: LPResult, ref: LPResult, opts: PDHGOptions) -> None:
    """Two runs of the algorithm agree: status, objective, and stopping check within two checks' margin."""
    assert res.status == ref.status
    assert abs(res.iterations - ref.iterations) <= 2 * opts.check_every, (res.iterations, ref.iterations)
    assert _rel(res.objective, ref.objective) <= 10 * opts.tol


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["afiro", "chip"])
def test_backend_follows_the_reference(backend: str, name: str, lp_data: Path, lp_meta: dict) -> None:
    """A backend runs the numpy reference's iteration: same status, iterations within a margin, accurate."""
    solve = pdhg_solver(backend)
    opts = PDHGOptions(tol=1e-6)
    res, ref = solve(read_mps(lp_data / "instances" / f"{name}.mps"), opts), _reference(name, opts.tol)
    _close_runs(res, ref, opts)
    for run in (res, ref):
        assert _rel(run.objective, lp_meta[name]["objective"]) <= 1e-6
        assert max(run.kkt["rel_primal"], run.kkt["rel_dual"], run.kkt["rel_gap"]) <= opts.tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree_directly(backend: str, lp_data: Path) -> None:
    """The backend's solution matches the numpy reference's (the same lines) to 1e-6.

    This is how torch and JAX are compared: each venv holds one of them, and both are held to the reference.
    """
    solve = pdhg_solver(backend)
    lp = read_mps(lp_data / "instances" / "afiro.mps")
    opts = PDHGOptions(tol=1e-7)
    res, ref = solve(lp, opts), _reference("afiro", opts.tol)
    assert res.iterations == ref.iterations
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.y, ref.y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["random", "facility"])
def test_float32(backend: str, kind: str) -> None:
    """In float32 the backend reaches tol 1e-4, near the float64 reference's stopping check and objective."""
    solve = pdhg_solver(backend, "float32")
    lp = GENERATED[kind]()
    opts = PDHGOptions(tol=1e-4)
    res, ref = solve(lp, opts), solve_pdhg_numpy(lp, opts)
    _close_runs(res, ref, opts)
    assert res.x.dtype == np.float64 and np.all(np.isfinite(res.x))
