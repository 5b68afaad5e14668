"""classical.darcy_runners on a coefficient already at the quadrature points (own data) solves the same
systems as on the raw field it thresholds, and refuses both or neither."""

from __future__ import annotations

import numpy as np
import pytest

from deq_pde.datasets import DarcyConfig, darcy_sample, darcy_setup
from deq_pde.datasets.own import darcy_runners as own_runners
from deq_pde.evaluation.classical import darcy_runners


def test_a_coefficient_at_the_quadrature_points_gives_the_raw_fields_solutions():
    config = DarcyConfig(grid_size=9)
    sample = darcy_sample(config, 0)
    problem, _ = darcy_setup(config)
    from_field = darcy_runners(config, sample["field"])
    from_coefficient = darcy_runners(config, coefficient=problem.coefficient(sample["field"]))
    assert set(from_field) == set(from_coefficient) == {"direct", "cg_amg", "jacobi", "gauss_seidel"}
    for name, (run, iterative) in from_field.items():
        assert from_coefficient[name][1] == iterative
        # pyamg's setup draws from numpy's global RNG (spectral radius estimate): CG+AMG agrees to rounding
        tolerance = {"rtol": 1e-5, "atol": 1e-9} if name == "cg_amg" else {"rtol": 0, "atol": 0}
        np.testing.assert_allclose(from_coefficient[name][0](3), run(3), err_msg=name, **tolerance)
    np.testing.assert_allclose(from_coefficient["direct"][0](1), sample["solution"], rtol=1e-12)


def test_own_runners_solve_the_grid_coefficient():
    config = DarcyConfig(grid_size=9)
    coefficient = darcy_sample(config, 1)["coefficient"]
    runners = own_runners(config, coefficient)
    assert set(runners) == {"direct", "cg_amg", "jacobi", "gauss_seidel"}
    assert np.all(np.isfinite(runners["direct"][0](1)))
    assert runners["cg_amg"][0](50) == pytest.approx(runners["direct"][0](1), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("given", [{}, {"field": np.ones((9, 9)), "coefficient": np.ones((128, 3))}])
def test_both_or_neither_input_is_refused(given):
    with pytest.raises(ValueError, match="a raw field or a coefficient at the quadrature points"):
        darcy_runners(DarcyConfig(grid_size=9), **given)
