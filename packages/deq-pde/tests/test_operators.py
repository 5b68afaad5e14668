"""Batched assembly (one code path on numpy, torch and JAX) against the scipy reference, solves, gradients."""

import contextlib
import functools

import numpy as np
import pytest
import scipy.sparse as sp
from backends import FRAMEWORKS, NAMES, asarray, assembler, compiled, gradient, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from deq_pde.baselines import direct
from deq_pde.operators import DirichletBC, FunctionSpace, Mesh, load, mass, stiffness, unit_square

FEW = settings(max_examples=8, deadline=None)


def _csr(space, values):
    p = space.pattern
    return sp.csr_matrix((to_numpy(values), p.indices, p.indptr), shape=(p.num_rows, p.num_rows))


def _coefficients(space, shape, seed=0):
    rng = np.random.default_rng(seed)
    return 1.0 + rng.random((*shape, space.num_cells, space.num_quadrature_points))


@pytest.mark.parametrize("backend", NAMES)
@pytest.mark.parametrize("degree", [1, 2])
def test_assembly_matches_scipy(backend, degree, x64):
    space = FunctionSpace(unit_square(5, 4), degree)
    asm = assembler(backend, space)
    coef_q = _coefficients(space, (2, 3))
    coef_n = 1.0 + np.random.default_rng(1).random((2, space.num_dofs))
    vq = asm.stiffness(asarray(backend, coef_q))
    vn = asm.stiffness(asarray(backend, coef_n), at="nodes")
    assert tuple(vq.shape) == (2, 3, space.pattern.nnz) and str(vq.dtype).endswith("float64")
    for i in range(2):
        for j in range(3):
            assert abs(_csr(space, vq[i, j]) - stiffness(space, coef_q[i, j])).max() < 1e-10
        assert abs(_csr(space, vn[i]) - stiffness(space, coef_n[i], at="nodes")).max() < 1e-10
    assert abs(_csr(space, asm.mass(asarray(backend, 1.0))) - mass(space)).max() < 1e-10
    f = np.random.default_rng(2).random((space.num_cells, space.num_quadrature_points))
    assert np.abs(to_numpy(asm.load(asarray(backend, f))) - load(space, f)).max() < 1e-10


@pytest.mark.parametrize("backend", NAMES)
def test_float32_assembly_stays_float32(backend):
    space = FunctionSpace(unit_square(4), 2)
    coef = _coefficients(space, (2,))
    values = assembler(backend, space).stiffness(asarray(backend, coef, "float32"))
    assert str(values.dtype).endswith("float32")
    reference = stiffness(space, coef[1])
    assert abs(_csr(space, values[1]) - reference).max() < 1e-5 * abs(reference).max()


@pytest.mark.parametrize("backend", NAMES)
def test_dirichlet_solve_matches_direct(backend, x64):
    space = FunctionSpace(unit_square(6), 2)
    asm = assembler(backend, space)
    bc = DirichletBC(space, lambda x, y: x - 2 * y)
    coef = _coefficients(space, (2,), seed=1)
    rhs = load(space, lambda x, y: np.cos(3 * x) * y)

    def solve(c, b):
        return asm.solve(*asm.dirichlet(asm.stiffness(c), b, bc), tol=1e-13)

    u = to_numpy(compiled(backend, solve)(asarray(backend, coef), asarray(backend, rhs)))
    for b in range(2):
        ref = bc.expand(direct(*bc.reduce(stiffness(space, coef[b]), rhs)).solution)
        assert np.abs(u[b] - ref).max() < 1e-10


def _perturbed_square(n: int, m: int, jitter: float, seed: int) -> Mesh:
    """``unit_square(n, m)`` with interior vertices moved by up to ``jitter`` of a cell (cells stay valid)."""
    mesh = unit_square(n, m)
    points = mesh.points.copy()
    interior = np.all((points > 1e-12) & (points < 1 - 1e-12), axis=1)
    step = np.array([1.0 / n, 1.0 / m])
    shift = np.random.default_rng(seed).uniform(-jitter, jitter, points.shape) * step
    points[interior] += shift[interior]
    return Mesh(points, mesh.cells)


@FEW
@given(
    n=st.integers(1, 4),
    m=st.integers(1, 4),
    degree=st.sampled_from([1, 2]),
    jitter=st.floats(0.0, 0.2),
    seed=st.integers(0, 2**16),
)
def test_stiffness_with_dirichlet_is_symmetric_positive_definite(n, m, degree, jitter, seed):
    space = FunctionSpace(_perturbed_square(n, m, jitter, seed), degree)
    asm = assembler("numpy", space)
    coef = np.exp(np.random.default_rng(seed).uniform(-2, 2, (space.num_cells, space.num_quadrature_points)))
    values = asm.stiffness(coef)
    matrix = _csr(space, values).toarray()
    assert np.allclose(matrix, matrix.T, atol=1e-12 * np.abs(matrix).max())
    assert np.allclose(matrix.sum(axis=1), 0.0, atol=1e-10 * np.abs(matrix).max())  # constants: no energy
    bc = DirichletBC(space, 0.0)
    constrained, _ = asm.dirichlet(values, np.zeros(space.num_dofs), bc)
    assert np.linalg.eigvalsh(_csr(space, constrained).toarray()).min() > 0


@pytest.mark.skipif(not FRAMEWORKS, reason="needs torch or jax")
@FEW
@given(batch=st.lists(st.integers(1, 3), max_size=2), degree=st.sampled_from([1, 2]), seed=st.integers(0, 99))
def test_framework_runs_the_numpy_lines_on_any_batch_shape(batch, degree, seed):
    from deq_core.testing.fixtures import jax_x64

    backend = FRAMEWORKS[0]
    space = FunctionSpace(unit_square(3, 2), degree)
    coef = _coefficients(space, tuple(batch), seed)
    x = np.random.default_rng(seed).standard_normal((*batch, space.num_dofs))
    ours, reference = assembler(backend, space), assembler("numpy", space)
    with jax_x64() if backend == "jax" else contextlib.nullcontext():
        values = ours.stiffness(asarray(backend, coef))
        np.testing.assert_allclose(to_numpy(values), reference.stiffness(coef), rtol=1e-12, atol=1e-14)
        product = ours.matvec(values, asarray(backend, x))
        np.testing.assert_allclose(
            to_numpy(product), reference.matvec(reference.stiffness(coef), x), rtol=1e-12, atol=1e-12
        )


@pytest.mark.skipif(not FRAMEWORKS, reason="needs torch or jax")
def test_solve_gradient_matches_finite_differences(x64):
    backend = FRAMEWORKS[0]
    space = FunctionSpace(unit_square(5), 1)
    asm = assembler(backend, space)
    bc = DirichletBC(space, 0.0)
    rng = np.random.default_rng(2)
    rhs, weights = asarray(backend, load(space, 1.0)), asarray(backend, rng.random(space.num_dofs))

    @functools.partial(compiled, backend)
    def objective(coef):
        values, lifted = asm.dirichlet(asm.stiffness(coef, at="nodes"), rhs, bc)
        return (weights * asm.solve(values, lifted, tol=1e-14)).sum()

    coef, direction = 1.0 + rng.random(space.num_dofs), rng.standard_normal(space.num_dofs)
    slope = float((to_numpy(gradient(objective, asarray(backend, coef))) * direction).sum())
    eps = 1e-6
    shifted = [float(objective(asarray(backend, coef + s * eps * direction))) for s in (1, -1)]
    fd = (shifted[0] - shifted[1]) / (2 * eps)
    assert abs(slope - fd) < 1e-7 * max(1.0, abs(fd))


@pytest.mark.parametrize("backend", NAMES)
def test_bad_shapes_and_dtypes_are_named(backend):
    space = FunctionSpace(unit_square(2), 1)
    asm = assembler(backend, space)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 8, 3\)"):
        asm.stiffness(asarray(backend, np.ones((2, 8, 4))))
    with pytest.raises(ValueError, match=r"nodal coefficient must have shape \(\.\.\., 9\)"):
        asm.stiffness(asarray(backend, np.ones(7)), at="nodes")
    with pytest.raises(ValueError, match="right-hand side"):
        asm.solve(asarray(backend, np.ones(space.pattern.nnz)), asarray(backend, np.ones(5)))
    if backend != "jax":  # JAX takes any array-like, as jnp.asarray does
        with pytest.raises(ValueError, match="floating-point"):
            asm.stiffness(asarray(backend, np.ones((8, 3)), "int64"))
