"""P1/P2 convergence rates on a manufactured solution (variable coefficient, Dirichlet lifting)."""

import numpy as np
import pytest
from manufactured import coefficient, exact, exact_gradient, source

from deq_pde.baselines import direct
from deq_pde.evaluation import error_norms
from deq_pde.operators import DirichletBC, FunctionSpace, load, stiffness, unit_square


def _errors(degree: int, n: int, at: str) -> tuple[float, float]:
    space = FunctionSpace(unit_square(n), degree)
    coef = space.interpolate(coefficient) if at == "nodes" else coefficient
    bc = DirichletBC(space, exact)
    matrix, rhs = bc.reduce(stiffness(space, coef, at=at), load(space, source))
    u = bc.expand(direct(matrix, rhs).solution)
    return error_norms(space, u, exact, exact_gradient)


@pytest.mark.parametrize(("degree", "l2_rate", "h1_rate"), [(1, 2.0, 1.0), (2, 3.0, 2.0)])
@pytest.mark.parametrize("at", ["quadrature", "nodes"])
def test_rates(degree, l2_rate, h1_rate, at):
    errs = np.array([_errors(degree, n, at) for n in (8, 16, 32)])
    rates = np.log2(errs[:-1] / errs[1:])
    assert np.all(np.abs(rates[-1] - [l2_rate, h1_rate]) < 0.1), rates
    assert errs[-1, 0] < errs[0, 0] / 2**l2_rate
