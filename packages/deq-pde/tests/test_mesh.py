"""Meshes, dof maps and input validation."""

import numpy as np
import pytest

from deq_pde.operators import FunctionSpace, Mesh, read_mesh, stiffness, unit_square, write_mesh


def test_unit_square_counts_and_area():
    mesh = unit_square(4, 3)
    assert mesh.num_cells == 24 and mesh.num_vertices == 20
    space = FunctionSpace(mesh, 2)
    assert space.num_dofs == 20 + mesh.edges[0].shape[0] == (2 * 4 + 1) * (2 * 3 + 1)
    assert np.isclose(space.weights.sum(), 1.0)
    assert space.boundary_dofs.shape[0] == 2 * (8 + 6)


def test_p2_dof_coordinates_match_basix_reference_points():
    space = FunctionSpace(unit_square(3, diagonal="left"), 2)
    x = space.mesh.points[space.mesh.cells]
    ref = space.element.points
    mapped = x[:, :1] + np.einsum("cik,qk->cqi", np.stack([x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]], 2), ref)
    assert np.allclose(space.dof_coordinates[space.dofmap], mapped)


def test_inverted_cell_is_rejected():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match=r"inverted cells .* indices \[1\]"):
        Mesh(points, np.array([[0, 1, 2], [1, 2, 3]]))


def test_degenerate_and_bad_arrays_are_rejected():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="zero area"):
        Mesh(points, np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="repeated vertex"):
        Mesh(points, np.array([[0, 1, 1]]))
    with pytest.raises(ValueError, match=r"shape \(C, 3\)"):
        Mesh(points, np.array([[0, 1, 2, 3]]))
    with pytest.raises(ValueError, match="only 4 points"):
        Mesh(points, np.array([[0, 1, 7]]))
    with pytest.raises(ValueError, match="integer"):
        Mesh(points, np.array([[0.0, 1.0, 3.0]]))
    with pytest.raises(ValueError, match="NaN"):
        Mesh(np.array([[0.0, np.nan], [1, 0], [0, 1]]), np.array([[0, 1, 2]]))


def test_coefficient_shape_mismatch_is_named():
    space = FunctionSpace(unit_square(2), 1)
    with pytest.raises(ValueError, match=r"coefficient must have shape \(\.\.\., 8, 3\)"):
        stiffness(space, np.ones((8, 4)))
    with pytest.raises(ValueError, match=r"coefficient must have shape \(\.\.\., 9\)"):
        stiffness(space, np.ones(10), at="nodes")


def test_meshio_round_trip(tmp_path):
    mesh = unit_square(3)
    write_mesh(mesh, tmp_path / "square.vtk")
    back = read_mesh(tmp_path / "square.vtk")
    assert np.allclose(back.points, mesh.points) and np.array_equal(back.cells, mesh.cells)
    with pytest.raises(ValueError, match="does not exist"):
        read_mesh(tmp_path / "missing.msh")
    (tmp_path / "bad.vtk").write_text("not a mesh")
    with pytest.raises(ValueError, match="cannot read mesh file"):
        read_mesh(tmp_path / "bad.vtk")
