"""Torch assembly agrees with the numpy reference; solves and their gradients are correct."""

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from deq_pde.baselines import direct  # noqa: E402
from deq_pde.operators import DirichletBC, FunctionSpace, load, mass, stiffness, unit_square  # noqa: E402
from deq_pde.operators.torch import TorchAssembler  # noqa: E402


def _csr(space, values):
    p = space.pattern
    return sp.csr_matrix((np.asarray(values), p.indices, p.indptr), shape=(p.num_rows, p.num_rows))


@pytest.mark.parametrize("degree", [1, 2])
def test_assembly_matches_numpy(degree):
    space = FunctionSpace(unit_square(5, 4), degree)
    asm = TorchAssembler(space)
    rng = np.random.default_rng(0)
    coef_q = 1.0 + rng.random((2, 3, space.num_cells, space.num_quadrature_points))
    coef_n = 1.0 + rng.random((2, space.num_dofs))
    vq = asm.stiffness(torch.from_numpy(coef_q))
    vn = asm.stiffness(torch.from_numpy(coef_n), at="nodes")
    assert vq.shape == (2, 3, space.pattern.nnz)
    for i in range(2):
        for j in range(3):
            assert abs(_csr(space, vq[i, j]) - stiffness(space, coef_q[i, j])).max() < 1e-10
        assert abs(_csr(space, vn[i]) - stiffness(space, coef_n[i], at="nodes")).max() < 1e-10
    one = torch.ones(1, dtype=torch.float64)
    assert abs(_csr(space, asm.mass(one)) - mass(space)).max() < 1e-10
    f = rng.random((space.num_cells, space.num_quadrature_points))
    assert np.abs(asm.load(torch.from_numpy(f)).numpy() - load(space, f)).max() < 1e-10


def test_dirichlet_solve_matches_direct():
    space = FunctionSpace(unit_square(6), 2)
    asm = TorchAssembler(space)
    bc = DirichletBC(space, lambda x, y: x - 2 * y)
    coef = 1.0 + np.random.default_rng(1).random((2, space.num_cells, space.num_quadrature_points))
    rhs = load(space, lambda x, y: np.cos(3 * x) * y)
    values, lifted = asm.dirichlet(asm.stiffness(torch.from_numpy(coef)), torch.from_numpy(rhs), bc)
    u = asm.solve(values, lifted, tol=1e-13)
    for b in range(2):
        ref = bc.expand(direct(*bc.reduce(stiffness(space, coef[b]), rhs)).solution)
        assert np.abs(u[b].numpy() - ref).max() < 1e-10
    assert np.allclose(asm.to_sparse_csr(values[0]).to_dense().numpy(), _csr(space, values[0]).toarray())


def test_gradient_matches_finite_differences():
    space = FunctionSpace(unit_square(5), 1)
    asm = TorchAssembler(space)
    bc = DirichletBC(space, 0.0)
    rhs = torch.from_numpy(load(space, 1.0))
    weights = torch.from_numpy(np.random.default_rng(2).random(space.num_dofs))

    def objective(coef):
        values, lifted = asm.dirichlet(asm.stiffness(coef, at="nodes"), rhs, bc)
        return (weights * asm.solve(values, lifted, tol=1e-14)).sum()

    coef = torch.from_numpy(1.0 + np.random.default_rng(3).random(space.num_dofs)).requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(coef), coef)
    direction = torch.from_numpy(np.random.default_rng(4).standard_normal(space.num_dofs))
    eps = 1e-6
    with torch.no_grad():
        fd = (objective(coef + eps * direction) - objective(coef - eps * direction)) / (2 * eps)
    assert abs(float((grad * direction).sum()) - float(fd)) < 1e-7 * max(1.0, abs(float(fd)))
    assert torch.autograd.gradcheck(objective, (coef,), atol=1e-6)


def test_bad_shapes_and_dtypes_are_named():
    space = FunctionSpace(unit_square(2), 1)
    asm = TorchAssembler(space)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 8, 3\)"):
        asm.stiffness(torch.ones(2, 8, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="floating-point"):
        asm.stiffness(torch.ones(8, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="right-hand side"):
        asm.solve(torch.ones(space.pattern.nnz, dtype=torch.float64), torch.ones(5, dtype=torch.float64))
