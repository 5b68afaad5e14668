"""Our restarted PDHG: Netlib accuracy, agreement with GLOP on generated LPs, infeasibility, warm start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _backends import pdhg_solver

from deq_opt.baselines import solve_glop
from deq_opt.baselines.pdhg import PDHGOptions
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


# Iterations to reach tol=1e-6; measured identically with the torch and the JAX backend (they run the same
# deterministic algorithm in float64), so each venv checks its backend against the same numbers.
AGREEMENT = {"chip": 576, "afiro": 384}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(AGREEMENT))
def test_backends_agree_on_trajectory(backend: str, name: str, lp_data: Path, lp_meta: dict) -> None:
    """Both backends follow the same iteration trajectory (same stopping iteration and objective)."""
    solve = pdhg_solver(backend)
    res = solve(read_mps(lp_data / "instances" / f"{name}.mps"), PDHGOptions(tol=1e-6))
    assert res.iterations == AGREEMENT[name]
    assert _rel(res.objective, lp_meta[name]["objective"]) <= 1e-6


def test_backends_agree_directly(lp_data: Path) -> None:
    """torch and JAX solutions match to 1e-8 (runs only where both backends are installed)."""
    torch_solve, jax_solve = pdhg_solver("torch"), pdhg_solver("jax")
    lp = read_mps(lp_data / "instances" / "adlittle.mps")
    a, b = torch_solve(lp, PDHGOptions(tol=1e-7)), jax_solve(lp, PDHGOptions(tol=1e-7))
    assert a.iterations == b.iterations
    np.testing.assert_allclose(a.x, b.x, rtol=1e-8, atol=1e-8)
