"""Invalid meshes are refused by name when built or read: duplicates, cracks, overlaps, unused vertices."""

import meshio
import numpy as np
import pytest

from deq_pde.operators import Mesh, MeshError, read_mesh, unit_square

SQUARE = unit_square(4)  # 25 vertices, 32 cells; vertex 12 = (0.5, 0.5) is interior


def _with(points=None, cells=None) -> Mesh:
    """``SQUARE`` with extra points and extra cells appended."""
    extra_points = np.zeros((0, 2)) if points is None else np.asarray(points, dtype=float)
    extra_cells = np.zeros((0, 3), dtype=np.int64) if cells is None else np.asarray(cells)
    return Mesh(np.concatenate([SQUARE.points, extra_points]), np.concatenate([SQUARE.cells, extra_cells]))


def test_valid_meshes_pass():
    """Both diagonals, a non-convex L shape and a square with a hole are accepted as they are."""
    for diagonal in ("right", "left"):
        unit_square(5, 3, diagonal=diagonal)
    grid = unit_square(4)
    centroids = grid.points[grid.cells].mean(axis=1)
    for drop in (
        (centroids[:, 0] > 0.5) & (centroids[:, 1] > 0.5),  # L shape
        (np.abs(centroids - 0.5) < 0.25).all(axis=1),  # hole in the middle
    ):
        kept = grid.cells[~drop]
        used = np.unique(kept)
        renumber = np.full(grid.num_vertices, -1)
        renumber[used] = np.arange(used.size)
        Mesh(grid.points[used], renumber[kept])


def test_duplicated_cell_is_named():
    with pytest.raises(MeshError, match=r"duplicated cells: cell 32 repeats cell 5 .*at indices \[32\]"):
        _with(cells=[SQUARE.cells[5]])
    rotated = np.roll(SQUARE.cells[7], 1)  # the same triangle, vertices listed from another corner
    with pytest.raises(MeshError, match=r"cell 32 repeats cell 7"):
        _with(cells=[rotated])


def test_duplicated_vertex_crack_is_named():
    """Vertex 12 copied to 25 and the cells left of x = 0.5 moved onto the copy: the mesh is cut there."""
    points = np.concatenate([SQUARE.points, SQUARE.points[12:13]])
    cells = SQUARE.cells.copy()
    left = points[cells].mean(axis=1)[:, 0] < 0.5
    cells[left] = np.where(cells[left] == 12, 25, cells[left])
    with pytest.raises(MeshError, match=r"duplicated vertices: vertex 25 is at the coordinates of vertex 12"):
        Mesh(points, cells)


def test_unreferenced_vertex_is_named():
    """Before the check it reached SuperLU as "Factor is exactly singular"."""
    with pytest.raises(MeshError, match=r"unreferenced vertices .* at indices \[25\]"):
        _with(points=[[0.3, 0.3]])


def test_cell_on_the_same_side_of_a_shared_edge_overlaps():
    """A cell over cell 0's edge (0, 1), on the same side: two cells run along it the same way."""
    with pytest.raises(MeshError, match=r"cells 0 and 32 both run along edge \(0, 1\) in the same direction"):
        _with(cells=[[0, 1, 7]])


def test_cell_meeting_the_mesh_at_one_vertex_overlaps():
    """A cell from corner vertex 0 into the square shares no edge: vertex 0 is pinched."""
    expected = r"pinched cells at vertices \[0\].*vertex 0 is in cells \[0, 16, 32\]"
    with pytest.raises(MeshError, match=expected):
        _with(points=[[0.2, 0.1], [0.1, 0.2]], cells=[[0, 25, 26]])


def test_fan_winding_twice_overlaps():
    """Twelve 60-degree cells around one vertex: every edge is shared properly, but the fan turns 4 pi."""
    angles = np.arange(12) * np.pi / 3
    radius = np.where(np.arange(12) < 6, 1.0, 2.0)
    points = np.concatenate([[[0.0, 0.0]], np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1)])
    rim = np.arange(1, 13)
    cells = np.stack([np.zeros(12, dtype=int), rim, np.roll(rim, -1)], 1)
    with pytest.raises(MeshError, match=r"overlapping cells around vertices \[0\].* turn 4\.000 pi"):
        Mesh(points, cells)


def test_detached_cell_over_the_mesh_overlaps():
    """A triangle of its own lying on the square: caught by the area, more than the convex hull's."""
    with pytest.raises(MeshError, match=r"total area 1\.00\d+ exceeds the area 1 of the convex hull"):
        _with(points=[[0.3, 0.3], [0.35, 0.3], [0.3, 0.35]], cells=[[25, 26, 27]])


def test_garbage_mesh_file_is_named_and_quiet(tmp_path, capfd):
    """meshio's own complaints go into the error, not onto stdout/stderr."""
    for name, text in (("bad.vtk", "not a mesh"), ("bad.msh", "garbage"), ("bad.xyz", "garbage")):
        (tmp_path / name).write_text(text)
        with pytest.raises(MeshError, match=rf"cannot read mesh file .*{name}: it is not a readable mesh"):
            read_mesh(tmp_path / name)
    assert capfd.readouterr() == ("", "")


def _write(path, points, blocks):
    """A planar mesh file written by meshio."""
    points = np.asarray(points, dtype=float)
    meshio.write(path, meshio.Mesh(np.column_stack([points, np.zeros(len(points))]), blocks))
    return path


def test_invalid_mesh_file_names_the_file(tmp_path):
    twice = [("triangle", np.concatenate([SQUARE.cells, SQUARE.cells[3:4]]))]
    with pytest.raises(MeshError, match=r"mesh file .*twice\.vtk: duplicated cells: cell 32 repeats cell 3"):
        read_mesh(_write(tmp_path / "twice.vtk", SQUARE.points, twice))
    mixed = [("triangle", SQUARE.cells), ("quad", np.array([[0, 1, 6, 5]]))]
    with pytest.raises(MeshError, match=r"holds \['quad'\] cells; only linear triangle meshes"):
        read_mesh(_write(tmp_path / "mixed.vtk", SQUARE.points, mixed))


def test_mesh_file_nodes_in_no_triangle_are_dropped(tmp_path):
    """A node no triangle uses (gmsh writes circle centres so) is left out; lines are ignored."""
    points = np.concatenate([[[0.3, 0.3]], SQUARE.points])
    blocks = [("line", np.array([[1, 2]])), ("triangle", SQUARE.cells + 1)]
    mesh = read_mesh(_write(tmp_path / "orphan.vtk", points, blocks))
    assert np.array_equal(mesh.points, SQUARE.points) and np.array_equal(mesh.cells, SQUARE.cells)
