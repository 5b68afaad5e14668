"""Triangle meshes: a validated container, a structured unit-square generator and meshio file reading."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from deq_pde.operators.mesh_checks import MeshError, check_mesh


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh: ``points`` (P, 2) coordinates and ``cells`` (C, 3) counter-clockwise vertex ids."""

    points: np.ndarray
    cells: np.ndarray

    def __post_init__(self) -> None:
        points = np.asarray(self.points)
        cells = np.asarray(self.cells)
        if points.ndim != 2 or points.shape[1] not in (2, 3):
            raise MeshError(f"mesh points must have shape (P, 2), got {points.shape}")
        if points.shape[1] == 3:
            if np.any(points[:, 2] != 0):
                raise MeshError(
                    "mesh points have a non-zero z coordinate; only planar 2D meshes are supported"
                )
            points = points[:, :2]
        if not np.issubdtype(points.dtype, np.floating) and not np.issubdtype(points.dtype, np.integer):
            raise MeshError(f"mesh points must be numeric, got dtype {points.dtype}")
        points = np.ascontiguousarray(points, dtype=np.float64)
        if not np.all(np.isfinite(points)):
            raise MeshError("mesh points contain NaN or infinite coordinates")
        if cells.ndim != 2 or cells.shape[1] != 3:
            raise MeshError(f"mesh cells must have shape (C, 3) (triangles), got {cells.shape}")
        if not np.issubdtype(cells.dtype, np.integer):
            raise MeshError(f"mesh cells must be integer vertex indices, got dtype {cells.dtype}")
        if cells.shape[0] == 0:
            raise MeshError("mesh has no cells")
        if cells.min() < 0 or cells.max() >= points.shape[0]:
            raise MeshError(
                f"mesh cells reference vertex ids in [{cells.min()}, {cells.max()}] but there are only "
                f"{points.shape[0]} points"
            )
        cells = np.ascontiguousarray(cells, dtype=np.int64)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "cells", cells)
        check_mesh(points, cells)

    @property
    def num_cells(self) -> int:
        """Number of triangles."""
        return int(self.cells.shape[0])

    @property
    def num_vertices(self) -> int:
        """Number of vertices."""
        return int(self.points.shape[0])

    @cached_property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Unique edges (E, 2) as sorted vertex pairs, and the (C, 3) cell-to-edge map in basix edge order."""
        # basix triangle edges: edge k joins the two vertices other than vertex k
        local = np.array([[1, 2], [0, 2], [0, 1]])
        pairs = np.sort(self.cells[:, local], axis=2).reshape(-1, 2)
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        return unique, inverse.reshape(-1, 3)

    @cached_property
    def boundary_edges(self) -> np.ndarray:
        """Indices of edges that belong to exactly one cell."""
        _, cell_edges = self.edges
        counts = np.bincount(cell_edges.ravel(), minlength=self.edges[0].shape[0])
        return np.flatnonzero(counts == 1)


def unit_square(n: int, m: int | None = None, diagonal: str = "right") -> Mesh:
    """Structured triangulation of [0, 1]^2 with ``n`` x ``m`` squares, each split into two triangles."""
    m = n if m is None else m
    if n < 1 or m < 1:
        raise ValueError(f"unit_square needs at least one cell per side, got n={n}, m={m}")
    if diagonal not in ("right", "left"):
        raise ValueError(f"diagonal must be 'right' or 'left', got {diagonal!r}")
    xs, ys = np.meshgrid(np.linspace(0.0, 1.0, n + 1), np.linspace(0.0, 1.0, m + 1))
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    i, j = np.meshgrid(np.arange(n), np.arange(m))
    v0 = (j * (n + 1) + i).ravel()
    v1, v2, v3 = v0 + 1, v0 + n + 1, v0 + n + 2
    if diagonal == "right":
        cells = np.concatenate([np.stack([v0, v1, v3], 1), np.stack([v0, v3, v2], 1)])
    else:
        cells = np.concatenate([np.stack([v0, v1, v2], 1), np.stack([v1, v3, v2], 1)])
    return Mesh(points, cells)


def read_mesh(path: str | Path) -> Mesh:
    """Read a planar triangle mesh from any file format meshio understands (gmsh .msh, .vtk, .xdmf, ...).

    Lines and points (boundary markers) are ignored, and so are nodes that no triangle uses (the rest keep
    their order); other 2D or 3D cells (quads, quadratic triangles, ...) are refused.
    """
    import meshio

    path = Path(path)
    if not path.is_file():
        raise MeshError(f"mesh file {path} does not exist")
    chatter = io.StringIO()  # meshio prints its readers' complaints; they go into the error instead
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            data = meshio.read(path)
    except (Exception, SystemExit) as exc:  # meshio raises many types, and exits on unknown formats
        said = " ".join(f"{chatter.getvalue()} {'' if isinstance(exc, SystemExit) else exc}".split())
        raise MeshError(f"cannot read mesh file {path}: it is not a readable mesh (meshio: {said})") from exc
    other = sorted({block.type for block in data.cells if block.dim >= 2 and block.type != "triangle"})
    if other:
        raise MeshError(
            f"mesh file {path} holds {other} cells; only linear triangle meshes are supported (split them "
            f"into triangles, e.g. with gmsh)"
        )
    triangles = [block.data for block in data.cells if block.type == "triangle"]
    if not triangles:
        kinds = sorted({block.type for block in data.cells})
        raise MeshError(f"mesh file {path} holds no triangle cells (found {kinds})")
    points, cells = data.points, np.concatenate(triangles)
    if cells.min() >= 0 and cells.max() < len(points):  # else Mesh names the bad ids
        used = np.unique(cells)  # nodes in no triangle (gmsh's circle centres, say) are dropped
        points, cells = points[used], np.searchsorted(used, cells)
    try:
        return Mesh(points, cells)
    except MeshError as exc:
        raise MeshError(f"mesh file {path}: {exc}") from exc


def write_mesh(mesh: Mesh, path: str | Path) -> None:
    """Write ``mesh`` with meshio (format from the file suffix), atomically via a temporary file."""
    import meshio

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    points = np.column_stack([mesh.points, np.zeros(mesh.num_vertices)])
    meshio.write(tmp, meshio.Mesh(points, [("triangle", mesh.cells)]))
    tmp.replace(path)
