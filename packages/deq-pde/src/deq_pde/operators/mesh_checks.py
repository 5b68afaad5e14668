"""Validity checks of a triangle mesh, vectorised numpy: each raises :class:`MeshError` naming the culprits.

Together they make the mesh a proper planar triangulation locally: every cell counter-clockwise with a
non-zero area, no cell twice, every vertex in some cell, every edge in at most two cells and then in opposite
directions, the cells around each vertex one fan that turns at most once, no two boundary vertices at the
same point (a crack). Parts of a mesh that overlap without sharing a vertex are caught when the cells' total
area exceeds the area of the points' convex hull (always the case on a convex domain).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, cKDTree

#: Two vertices closer than this fraction of the mesh's bounding-box diagonal are the same point.
COINCIDENT = 1e-10


class MeshError(ValueError):
    """An invalid mesh: the message names the offending cells or vertices."""


def _listed(indices: np.ndarray) -> str:
    """The first ten of ``indices`` and their count, for an error message."""
    more = f" ({indices.size} in total)" if indices.size > 10 else ""
    return f"{np.asarray(indices)[:10].tolist()}{more}"


def _cells_at(cells: np.ndarray, vertex: int) -> str:
    """The cells that hold ``vertex``, for an error message."""
    return _listed(np.flatnonzero((cells == vertex).any(axis=1)))


def check_mesh(points: np.ndarray, cells: np.ndarray) -> None:
    """Raise :class:`MeshError` unless ``cells`` (C, 3) on ``points`` (P, 2) form a valid triangulation."""
    x, y = points[:, 0][cells], points[:, 1][cells]
    ex, ey = np.roll(x, -1, axis=1) - x, np.roll(y, -1, axis=1) - y  # edge k: from corner k to corner k + 1
    det = _check_cells(cells, ex, ey)
    unused = np.flatnonzero(np.bincount(cells.ravel(), minlength=points.shape[0]) == 0)
    if unused.size:
        raise MeshError(
            f"unreferenced vertices (in no cell; their dofs would make the system singular) at indices "
            f"{_listed(unused)}; remove them and renumber the cells"
        )
    boundary = _check_edges(cells, points.shape[0])
    # the angle at corner k lies between edge k and the reversed edge k - 1; sin and cos times |e_k||e_k-1|
    angles = np.arctan2(det[:, None], -(ex * np.roll(ex, 1, axis=1) + ey * np.roll(ey, 1, axis=1)))
    turned = np.bincount(cells.ravel(), weights=angles.ravel(), minlength=points.shape[0])
    over = np.flatnonzero(turned > 2 * np.pi * (1 + 1e-9))
    if over.size:
        raise MeshError(
            f"overlapping cells around vertices {_listed(over)}: the cells at vertex {int(over[0])} (cells "
            f"{_cells_at(cells, int(over[0]))}) turn {turned[over[0]] / np.pi:.3f} pi around it, more than "
            f"once"
        )
    _check_coincident(points, boundary)
    total, hull = 0.5 * float(det.sum()), float(ConvexHull(points).volume)
    if total > hull * (1 + 1e-9):
        raise MeshError(
            f"overlapping cells: the cells' total area {total:.6g} exceeds the area {hull:.6g} of the convex "
            f"hull of the points, so some cells cover the same region"
        )


def _check_cells(cells: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    """Twice the signed cell areas; raise on repeated vertices, zero-area or clockwise (inverted) cells."""
    repeated = (cells[:, 0] == cells[:, 1]) | (cells[:, 1] == cells[:, 2]) | (cells[:, 0] == cells[:, 2])
    if np.any(repeated):
        raise MeshError(f"degenerate cells (repeated vertex) at indices {_listed(np.flatnonzero(repeated))}")
    det = ey[:, 0] * ex[:, 2] - ex[:, 0] * ey[:, 2]  # edges 0 and -2 run from corner 0 to corners 1 and 2
    length = ex**2 + ey**2
    degenerate = np.abs(det) <= 1e-12 * np.maximum(length[:, 0], length[:, 2])
    if np.any(degenerate):
        raise MeshError(f"degenerate cells (zero area) at indices {_listed(np.flatnonzero(degenerate))}")
    inverted = det < 0
    if np.any(inverted):
        raise MeshError(
            f"inverted cells (clockwise vertex order, negative Jacobian determinant) at indices "
            f"{_listed(np.flatnonzero(inverted))}; order each triangle's vertices counter-clockwise"
        )
    return det


def _check_edges(cells: np.ndarray, n: int) -> np.ndarray:
    """The vertices on the boundary; raise on duplicated cells, same-direction edges or pinched vertices."""
    tails, heads = cells.ravel(), cells[:, [1, 2, 0]].ravel()
    low, high = np.minimum(tails, heads), np.maximum(tails, heads)
    keys = (low * n + high) * 2 + (tails > heads)  # the edge, then which way the cell runs along it
    ordered = np.sort(keys)
    if np.any(ordered[1:] == ordered[:-1]):
        _same_direction(cells, keys, n)
    edges = ordered // 2
    alone = np.ones(edges.size, dtype=bool)  # an edge in one cell only lies on the boundary
    paired = edges[1:] == edges[:-1]
    alone[1:] &= ~paired
    alone[:-1] &= ~paired
    ends = np.concatenate(divmod(edges[alone], n))
    incident = np.bincount(ends, minlength=n)
    pinched = np.flatnonzero(incident > 2)  # a boundary vertex has one edge in and one out, per fan
    if pinched.size:
        raise MeshError(
            f"overlapping or pinched cells at vertices {_listed(pinched)}: cells meet there in separate fans "
            f"that share no edge (vertex {int(pinched[0])} is in cells {_cells_at(cells, int(pinched[0]))})"
        )
    return np.flatnonzero(incident)


def _same_direction(cells: np.ndarray, keys: np.ndarray, n: int) -> None:
    """Raise for the first edge that two cells run along in the same direction (a duplicate or overlap)."""
    order = np.argsort(keys, kind="stable")
    at = np.flatnonzero(keys[order[1:]] == keys[order[:-1]])
    first, again = order[at] // 3, order[at + 1] // 3
    copies = np.all(np.sort(cells[first], axis=1) == np.sort(cells[again], axis=1), axis=1)
    if np.any(copies):
        k = int(np.flatnonzero(copies)[0])
        raise MeshError(
            f"duplicated cells: cell {int(again[k])} repeats cell {int(first[k])} (vertices "
            f"{cells[first[k]].tolist()}); duplicates at indices {_listed(np.unique(again[copies]))}"
        )
    a, b = divmod(int(keys[order[at[0]]]) // 2, n)
    raise MeshError(
        f"overlapping cells: cells {int(first[0])} and {int(again[0])} both run along edge ({a}, {b}) in the "
        f"same direction, so they lie on the same side of it (an edge must be in at most two cells, in "
        f"opposite directions); {at.size} such edge use(s)"
    )


def _check_coincident(points: np.ndarray, boundary: np.ndarray) -> None:
    """Raise when two boundary vertices sit at the same point: the mesh is cut apart there (a crack)."""
    radius = COINCIDENT * float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    pairs = cKDTree(points[boundary]).query_pairs(radius, output_type="ndarray")
    if pairs.size:
        i, j = sorted(int(v) for v in boundary[pairs[np.argmin(pairs.max(axis=1))]])
        raise MeshError(
            f"duplicated vertices: vertex {j} is at the coordinates of vertex {i} ({points[i].tolist()}), "
            f"which cuts the mesh apart there (a crack); {len(pairs)} such pair(s); merge them and renumber "
            f"the cells"
        )
