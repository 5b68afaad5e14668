"""Classical solvers agree with the direct solve; Newton and Picard solve nonlinear diffusion."""

import numpy as np
import pytest
import scipy.sparse as sp

from deq_pde.baselines import cg_amg, direct, gauss_seidel, jacobi, newton, picard
from deq_pde.operators import (
    DarcyProblem,
    FunctionSpace,
    NonlinearDiffusion,
    gaussian_random_field,
    load,
    stiffness,
    unit_square,
)


@pytest.fixture(scope="module")
def darcy_system():
    space = FunctionSpace(unit_square(8), 1)
    problem = DarcyProblem(space)
    field = gaussian_random_field(np.random.default_rng(3), 9)
    return problem.system(problem.coefficient(field))


def test_orderings_agree(darcy_system):
    matrix, rhs = darcy_system
    ref = direct(matrix, rhs).solution
    for ordering in ("MMD_AT_PLUS_A", "NATURAL"):
        assert np.allclose(direct(matrix, rhs, ordering).solution, ref, atol=1e-12)
    with pytest.raises(ValueError, match="ordering"):
        direct(matrix, rhs, "AMD")


@pytest.mark.parametrize(
    "solve",
    [
        lambda a, b: cg_amg(a, b, tol=1e-12),
        lambda a, b: jacobi(a, b, iterations=5000, tol=1e-11),
        lambda a, b: jacobi(a, b, iterations=8000, omega=0.8, tol=1e-11),
        lambda a, b: gauss_seidel(a, b, iterations=3000, tol=1e-11),
        lambda a, b: gauss_seidel(a, b, iterations=3000, sweep="symmetric", tol=1e-11),
    ],
)
def test_iterative_agrees_with_direct(darcy_system, solve):
    matrix, rhs = darcy_system
    ref = direct(matrix, rhs).solution
    result = solve(matrix, rhs)
    assert result.converged
    assert result.residuals.shape == (result.iterations + 1,)
    assert result.residuals[-1] < 1e-10 < result.residuals[0]
    assert np.linalg.norm(result.solution - ref) / np.linalg.norm(ref) < 1e-8


def test_stationary_iterations_never_claim_unearned_convergence(darcy_system):
    """Jacobi diverging to inf/NaN, or a fixed sweep count without ``tol``, is not ``converged``."""
    matrix = sp.csr_matrix(
        np.array([[1.0, 0.9, 0.9], [0.9, 1.0, 0.9], [0.9, 0.9, 1.0]])
    )  # SPD, Jacobi diverges
    with np.errstate(over="ignore", invalid="ignore"):
        diverged = jacobi(matrix, np.ones(3), iterations=2000, tol=1e-8)
    assert not diverged.converged and diverged.iterations < 2000
    assert not np.isfinite(diverged.residuals[-1]) or diverged.residuals[-1] > 1
    dmatrix, rhs = darcy_system
    assert not gauss_seidel(dmatrix, rhs, iterations=5).converged  # no tol asked: nothing claimed
    short = gauss_seidel(dmatrix, rhs, iterations=5, tol=1e-12)
    assert not short.converged and short.residuals[-1] > 1e-12


@pytest.mark.parametrize("value", [-0.5, 0.0, float("nan"), float("inf")])
def test_darcy_system_rejects_a_coefficient_that_is_not_positive_and_finite(value):
    """A negative, zero, NaN or infinite coefficient is refused by name, not solved into a wrong answer."""
    problem = DarcyProblem(FunctionSpace(unit_square(4), 1))
    coef = np.ones(problem.space.quadrature_points.shape[:-1])
    coef[2, 0] = value
    with pytest.raises(ValueError, match="Darcy coefficient must be finite and positive everywhere"):
        problem.system(coef)


def test_fixed_iteration_count_and_bad_input(darcy_system):
    matrix, rhs = darcy_system
    result = gauss_seidel(matrix, rhs, iterations=7)
    assert result.iterations == 7 and np.all(np.diff(result.residuals) < 0)
    with pytest.raises(ValueError, match=r"right-hand side must have shape \(49,\)"):
        jacobi(matrix, rhs[:-1], iterations=3)


@pytest.mark.parametrize("degree", [1, 2])
def test_newton_and_picard_solve_nonlinear_diffusion(degree):
    space = FunctionSpace(unit_square(8), degree)
    problem = NonlinearDiffusion(space, f=lambda x, y: 20.0 + 0 * x, g=lambda x, y: x)
    result = newton(problem, tol=1e-12)
    assert result.converged and result.iterations <= 8
    assert np.linalg.norm(problem.residual(result.solution)[problem.bc.free]) < 1e-10
    assert np.allclose(result.solution[problem.bc.dofs], space.dof_coordinates[problem.bc.dofs, 0])
    slow = picard(problem, tol=1e-12)
    assert slow.converged and slow.iterations > result.iterations
    assert np.allclose(slow.solution, result.solution, atol=1e-9)


def test_jacobian_matches_finite_differences():
    space = FunctionSpace(unit_square(4), 2)
    problem = NonlinearDiffusion(space, f=3.0)
    u = np.random.default_rng(0).standard_normal(space.num_dofs)
    v = np.random.default_rng(1).standard_normal(space.num_dofs)
    eps = 1e-6
    fd = (problem.residual(u + eps * v) - problem.residual(u - eps * v)) / (2 * eps)
    assert np.allclose(problem.jacobian(u) @ v, fd, atol=1e-6)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_stiffness_rejects_a_bad_coefficient_before_the_solvers_see_it(value):
    """A NaN coefficient used to reach SuperLU ("Factor is exactly singular") or pyamg ("infs or NaNs")."""
    space = FunctionSpace(unit_square(4), 1)
    coef = np.ones((space.num_cells, space.num_quadrature_points))
    coef[3, 1] = value
    with pytest.raises(ValueError, match=r"coefficient must be finite and positive everywhere .*: 1 of 96"):
        stiffness(space, coef)
    with pytest.raises(ValueError, match="load f must be finite: 1 of 96"):
        load(space, np.where(np.arange(coef.size).reshape(coef.shape) == 7, np.nan, 1.0))


@pytest.mark.parametrize(
    "solve", [direct, cg_amg, lambda a, b: jacobi(a, b, 3), lambda a, b: gauss_seidel(a, b, 3)]
)
def test_solvers_reject_nan_systems_by_name(darcy_system, solve):
    matrix, rhs = darcy_system
    broken = matrix.copy()
    broken.data[5] = np.nan
    with pytest.raises(ValueError, match=r"the matrix has 1 NaN or infinite entries"):
        solve(broken, rhs)
    with pytest.raises(ValueError, match=r"the right-hand side has 1 NaN or infinite entries"):
        solve(matrix, np.where(np.arange(rhs.size) == 2, np.inf, rhs))


def test_sweeps_without_reaching_tol_are_not_converged():
    """``jacobi(K, b, iterations=2000)`` overflowing and ``gauss_seidel(..., 500)`` far off the solution
    (tens of percent on a fine Darcy mesh) both report ``converged=False``, with or without a ``tol``."""
    diverging = sp.csr_matrix(np.array([[1.0, 0.9, 0.9], [0.9, 1.0, 0.9], [0.9, 0.9, 1.0]]))
    with np.errstate(over="ignore", invalid="ignore"):
        for tol in (None, 1e-8):
            assert not jacobi(diverging, np.ones(3), iterations=2000, tol=tol).converged
    space = FunctionSpace(unit_square(64), 1)
    problem = DarcyProblem(space)
    matrix, rhs = problem.system(problem.coefficient(gaussian_random_field(np.random.default_rng(0), 65)))
    exact = direct(matrix, rhs).solution
    for tol in (None, 1e-10):
        result = gauss_seidel(matrix, rhs, 500, tol=tol)
        assert np.linalg.norm(result.solution - exact) / np.linalg.norm(exact) > 0.05
        assert not result.converged and result.iterations == 500
