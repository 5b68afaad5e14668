"""LP data model validation and the OR-Tools baselines' statuses and warm start."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from deq_opt import LinearProgram
from deq_opt.baselines import solve_glop, solve_pdlp
from deq_opt.datasets import random_lp


def _lp(**kw: object) -> LinearProgram:
    """A 2x2 LP with overrides."""
    base = dict(
        c=[1.0, 1.0],
        A=sp.csr_matrix(np.eye(2)),
        row_lo=[1.0, 1.0],
        row_hi=[np.inf, np.inf],
        lo=[0.0, 0.0],
        hi=[np.inf, np.inf],
    )
    base.update(kw)
    return LinearProgram(**base)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"c": [1.0]}, r"c: expected shape \(2,\)"),
        ({"c": [np.nan, 1.0]}, "non-finite objective"),
        ({"A": sp.csr_matrix([[np.inf, 0], [0, 1]])}, "non-finite coefficient"),
        ({"lo": [2.0, 0.0], "hi": [1.0, np.inf]}, "variable 0 has lower bound 2.0 > upper bound 1.0"),
        ({"row_lo": [np.nan, 1.0]}, "nan in row bounds"),
        ({"row_hi": [1.0]}, "row_hi: expected shape"),
    ],
)
def test_validation(kw: dict, match: str) -> None:
    """Bad shapes, non-finite coefficients and crossed bounds raise clear errors."""
    with pytest.raises(ValueError, match=match):
        _lp(**kw)


def test_glop_statuses() -> None:
    """GLOP reports optimal, infeasible and unbounded."""
    assert solve_glop(_lp()).status == "optimal"
    assert solve_glop(_lp(hi=[0.5, np.inf])).status == "infeasible"
    assert solve_glop(_lp(c=[-1.0, 1.0])).status == "unbounded"


def test_pdlp_solves_and_warm_starts() -> None:
    """PDLP reaches GLOP's objective; a primal+dual warm start at the optimum needs fewer iterations."""
    lp = random_lp(20, 60, 200, seed=7)
    ref = solve_glop(lp)
    cold = solve_pdlp(lp, tol=1e-8)
    assert cold.status == "optimal"
    assert abs(cold.objective - ref.objective) <= 1e-6 * max(1, abs(ref.objective))
    warm = solve_pdlp(lp, tol=1e-8, x0=ref.x, y0=ref.y)
    assert warm.status == "optimal" and warm.iterations < cold.iterations
    with pytest.raises(ValueError, match="y0 must be"):
        solve_pdlp(lp, y0=np.zeros(3))


def test_pdlp_infeasible() -> None:
    """PDLP reports a primal-infeasible LP as infeasible."""
    assert solve_pdlp(_lp(hi=[0.5, np.inf]), iteration_limit=10_000).status == "infeasible"
