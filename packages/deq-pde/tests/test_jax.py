"""JAX assembly agrees with the numpy reference under jit; solves and their gradients are correct."""

import numpy as np
import pytest
import scipy.sparse as sp

jax = pytest.importorskip("jax")

from deq_pde.baselines import direct  # noqa: E402
from deq_pde.operators import DirichletBC, FunctionSpace, load, mass, stiffness, unit_square  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _csr(space, values):
    p = space.pattern
    return sp.csr_matrix((np.asarray(values), p.indices, p.indptr), shape=(p.num_rows, p.num_rows))


@pytest.mark.parametrize("degree", [1, 2])
def test_assembly_matches_numpy(degree):
    from deq_pde.operators.jax import JaxAssembler

    space = FunctionSpace(unit_square(5, 4), degree)
    asm = JaxAssembler(space)
    rng = np.random.default_rng(0)
    coef_q = 1.0 + rng.random((3, space.num_cells, space.num_quadrature_points))
    coef_n = 1.0 + rng.random((2, space.num_dofs))
    vq = jax.jit(asm.stiffness)(coef_q)
    vn = jax.jit(lambda c: asm.stiffness(c, at="nodes"))(coef_n)
    assert vq.dtype == np.float64 and vq.shape == (3, space.pattern.nnz)
    for j in range(3):
        assert abs(_csr(space, vq[j]) - stiffness(space, coef_q[j])).max() < 1e-10
    for i in range(2):
        assert abs(_csr(space, vn[i]) - stiffness(space, coef_n[i], at="nodes")).max() < 1e-10
    assert abs(_csr(space, asm.mass()) - mass(space)).max() < 1e-10
    f = rng.random((space.num_cells, space.num_quadrature_points))
    assert np.abs(np.asarray(jax.jit(asm.load)(f)) - load(space, f)).max() < 1e-10


def test_dirichlet_solve_and_gradient():
    from deq_pde.operators.jax import JaxAssembler

    space = FunctionSpace(unit_square(5), 2)
    asm = JaxAssembler(space)
    bc = DirichletBC(space, lambda x, y: x * y)
    rhs = load(space, 1.0)
    coef = 1.0 + np.random.default_rng(1).random((2, space.num_cells, space.num_quadrature_points))

    @jax.jit
    def solve(c):
        values, lifted = asm.dirichlet(asm.stiffness(c), rhs, bc)
        return asm.solve(values, lifted, tol=1e-13)

    u = np.asarray(solve(coef))
    for b in range(2):
        ref = bc.expand(direct(*bc.reduce(stiffness(space, coef[b]), rhs)).solution)
        assert np.abs(u[b] - ref).max() < 1e-10

    weights = np.random.default_rng(2).random(space.num_dofs)
    objective = jax.jit(lambda c: (solve(c) * weights).sum())
    grad = np.asarray(jax.grad(objective)(coef))
    direction = np.random.default_rng(3).standard_normal(coef.shape)
    eps = 1e-6
    fd = (objective(coef + eps * direction) - objective(coef - eps * direction)) / (2 * eps)
    assert abs((grad * direction).sum() - float(fd)) < 1e-7 * max(1.0, abs(float(fd)))


def test_bad_shapes_are_named():
    from deq_pde.operators.jax import JaxAssembler

    asm = JaxAssembler(FunctionSpace(unit_square(2), 1))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 8, 3\)"):
        asm.stiffness(np.ones((8, 4)))
    with pytest.raises(ValueError, match=r"nodal coefficient must have shape \(\.\.\., 9\)"):
        asm.stiffness(np.ones(7), at="nodes")
