"""Seeded sparse LP generators: random feasible LPs, PageRank on Barabási–Albert graphs, and LP relaxations
of set cover, combinatorial auctions and capacitated facility location."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deq_opt.operators.lp import LinearProgram

__all__ = [
    "random_lp",
    "barabasi_albert_edges",
    "pagerank_lp",
    "pagerank_vector",
    "set_cover_lp",
    "combinatorial_auction_lp",
    "facility_location_lp",
]


def _positive(**sizes: int) -> None:
    """Raise unless every size is a positive integer."""
    for name, v in sizes.items():
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def random_lp(
    m: int = 10, n: int = 50, nnz: int = 100, eq_fraction: float = 0.3, seed: int = 0
) -> LinearProgram:
    """A feasible, bounded random LP with exactly ``nnz`` non-zeros (every row and column has one).

    Built around a known interior point ``x0`` in the box ``[0, u]``: equality rows are ``a.x = a.x0``; the
    others are ``<=`` or ``>=`` with a positive slack at ``x0``; box bounds make it bounded.
    """
    _positive(m=m, n=n, nnz=nnz)
    if nnz < max(m, n) or nnz > m * n:
        raise ValueError(f"nnz must be in [max(m, n), m*n] = [{max(m, n)}, {m * n}], got {nnz}")
    if not 0 <= eq_fraction <= 1:
        raise ValueError(f"eq_fraction must be in [0, 1], got {eq_fraction}")
    rng = np.random.default_rng(seed)
    k = max(m, n)
    rows, cols = np.arange(k) % m, rng.permutation(k) % n
    taken = set(zip(rows.tolist(), cols.tolist(), strict=True))
    extra = nnz - len(taken)
    while extra > 0:
        cand = rng.integers(0, m * n, size=2 * extra)
        for flat in np.unique(cand):
            pair = (int(flat // n), int(flat % n))
            if pair not in taken and extra > 0:
                taken.add(pair)
                extra -= 1
    ij = np.array(sorted(taken))
    A = sp.csr_matrix((rng.standard_normal(len(ij)), (ij[:, 0], ij[:, 1])), shape=(m, n))
    hi = rng.uniform(1.0, 10.0, n)
    x0 = hi * rng.uniform(0.1, 0.9, n)
    ax = A @ x0
    n_eq = int(round(eq_fraction * m))
    kind = np.array(["E"] * n_eq + list(rng.choice(["L", "G"], m - n_eq)))[rng.permutation(m)]
    slack = rng.uniform(0.1, 1.0, m)
    row_lo = np.where(kind == "E", ax, np.where(kind == "G", ax - slack, -np.inf))
    row_hi = np.where(kind == "E", ax, np.where(kind == "L", ax + slack, np.inf))
    return LinearProgram(
        c=rng.standard_normal(n),
        A=A,
        row_lo=row_lo,
        row_hi=row_hi,
        lo=np.zeros(n),
        hi=hi,
        name=f"random_{m}x{n}_s{seed}",
    )


def barabasi_albert_edges(n_nodes: int, m_attach: int = 3, seed: int = 0) -> np.ndarray:
    """Undirected edges (k, 2) of a Barabási–Albert preferential-attachment graph."""
    _positive(n_nodes=n_nodes, m_attach=m_attach)
    if n_nodes <= m_attach:
        raise ValueError(f"n_nodes must exceed m_attach, got {n_nodes} <= {m_attach}")
    rng = np.random.default_rng(seed)
    edges = np.empty((m_attach * (n_nodes - m_attach), 2), dtype=np.int64)
    repeated = np.empty(2 * len(edges), dtype=np.int64)
    targets, n_rep = np.arange(m_attach), 0
    for e, v in enumerate(range(m_attach, n_nodes)):
        sl = slice(e * m_attach, (e + 1) * m_attach)
        edges[sl, 0], edges[sl, 1] = v, targets
        repeated[n_rep : n_rep + m_attach] = targets
        repeated[n_rep + m_attach : n_rep + 2 * m_attach] = v
        n_rep += 2 * m_attach
        chosen: set[int] = set()
        while len(chosen) < m_attach:
            chosen.update(repeated[rng.integers(0, n_rep, m_attach - len(chosen))].tolist())
        targets = np.fromiter(chosen, dtype=np.int64)
    return edges


def _transition(n_nodes: int, edges: np.ndarray) -> sp.csr_matrix:
    """Column-stochastic random-walk matrix of an undirected graph."""
    i = np.concatenate([edges[:, 0], edges[:, 1]])
    j = np.concatenate([edges[:, 1], edges[:, 0]])
    deg = np.bincount(j, minlength=n_nodes).astype(np.float64)
    return sp.csr_matrix((1.0 / deg[j], (i, j)), shape=(n_nodes, n_nodes))


def pagerank_lp(n_nodes: int = 100, m_attach: int = 3, damping: float = 0.85, seed: int = 0) -> LinearProgram:
    """PageRank as an LP feasibility problem on a BA graph (PDLP paper form, zero objective).

    Find ``x >= 0`` with ``sum(x) = 1`` and ``damping * P x + (1 - damping) / n <= x``; its unique solution is
    the PageRank vector.
    """
    if not 0 < damping < 1:
        raise ValueError(f"damping must be in (0, 1), got {damping}")
    P = _transition(n_nodes, barabasi_albert_edges(n_nodes, m_attach, seed))
    A = sp.vstack([damping * P - sp.identity(n_nodes), sp.csr_matrix(np.ones((1, n_nodes)))]).tocsr()
    rhs = np.full(n_nodes, -(1 - damping) / n_nodes)
    return LinearProgram(
        c=np.zeros(n_nodes),
        A=A,
        row_lo=np.append(np.full(n_nodes, -np.inf), 1.0),
        row_hi=np.append(rhs, 1.0),
        lo=np.zeros(n_nodes),
        hi=np.full(n_nodes, np.inf),
        name=f"pagerank_{n_nodes}_s{seed}",
    )


def pagerank_vector(
    n_nodes: int = 100, m_attach: int = 3, damping: float = 0.85, seed: int = 0, tol: float = 1e-13
) -> np.ndarray:
    """The PageRank vector of the same graph by power iteration (reference for :func:`pagerank_lp`)."""
    P = _transition(n_nodes, barabasi_albert_edges(n_nodes, m_attach, seed))
    x = np.full(n_nodes, 1.0 / n_nodes)
    for _ in range(10_000):
        new = damping * (P @ x) + (1 - damping) / n_nodes
        if np.abs(new - x).sum() < tol:
            return new
        x = new
    return x


def set_cover_lp(
    n_elements: int = 100, n_sets: int = 200, density: float = 0.05, seed: int = 0
) -> LinearProgram:
    """LP relaxation of weighted set cover: ``min w.x s.t. A x >= 1, 0 <= x <= 1``."""
    _positive(n_elements=n_elements, n_sets=n_sets)
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    rng = np.random.default_rng(seed)
    A = sp.random(n_elements, n_sets, density=density, format="lil", random_state=rng, data_rvs=np.ones)
    for e in np.flatnonzero(np.asarray(A.sum(axis=1)).ravel() == 0):
        A[e, rng.integers(n_sets)] = 1.0
    A = A.tocsr()
    return LinearProgram(
        c=rng.integers(1, 101, n_sets).astype(float),
        A=A,
        row_lo=np.ones(n_elements),
        row_hi=np.full(n_elements, np.inf),
        lo=np.zeros(n_sets),
        hi=np.ones(n_sets),
        name=f"setcover_{n_elements}x{n_sets}_s{seed}",
    )


def combinatorial_auction_lp(
    n_items: int = 50, n_bids: int = 200, max_bundle: int = 5, seed: int = 0
) -> LinearProgram:
    """LP relaxation of winner determination: ``max p.x  s.t.  each item sold at most once, 0 <= x <= 1``.

    Bundles of 1..``max_bundle`` items; each price is the bundle's sum of private item values times a
    random complementarity factor. Stored in minimisation form (``c = -p``, ``maximize=True``).
    """
    _positive(n_items=n_items, n_bids=n_bids, max_bundle=max_bundle)
    rng = np.random.default_rng(seed)
    values = rng.uniform(1.0, 100.0, n_items)
    sizes = rng.integers(1, min(max_bundle, n_items) + 1, n_bids)
    rows, cols, prices = [], [], np.empty(n_bids)
    for b, k in enumerate(sizes):
        items = rng.choice(n_items, size=k, replace=False)
        rows.append(items)
        cols.append(np.full(k, b))
        prices[b] = values[items].sum() * rng.uniform(1.0, 1.0 + 0.2 * k)
    i, j = np.concatenate(rows), np.concatenate(cols)
    A = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n_items, n_bids))
    return LinearProgram(
        c=-prices,
        A=A,
        row_lo=np.full(n_items, -np.inf),
        row_hi=np.ones(n_items),
        lo=np.zeros(n_bids),
        hi=np.ones(n_bids),
        maximize=True,
        name=f"auction_{n_items}x{n_bids}_s{seed}",
    )


def facility_location_lp(
    n_customers: int = 20, n_facilities: int = 10, capacity_ratio: float = 3.0, seed: int = 0
) -> LinearProgram:
    """LP relaxation of capacitated facility location (Cornuéjols et al. instances).

    Variables ``x[i, j]`` (share of customer i served by j, index ``i * F + j``) then ``y[j]`` (open j).
    Rows: demand ``sum_j x_ij = 1``; capacity ``sum_i d_i x_ij - s_j y_j <= 0``; total capacity
    ``sum_j s_j y_j >= sum_i d_i``; tightening ``x_ij - y_j <= 0``.
    """
    _positive(n_customers=n_customers, n_facilities=n_facilities)
    if capacity_ratio < 1:
        raise ValueError(f"capacity_ratio must be >= 1 for feasibility, got {capacity_ratio}")
    rng = np.random.default_rng(seed)
    C, F = n_customers, n_facilities
    cust, fac = rng.uniform(0, 1, (C, 2)), rng.uniform(0, 1, (F, 2))
    demand = rng.uniform(5, 35, C)
    cap = rng.uniform(10, 160, F)
    cap *= capacity_ratio * demand.sum() / cap.sum()
    fixed = rng.uniform(0, 90, F) + rng.uniform(100, 110, F) * np.sqrt(cap)
    dist = 10 * np.linalg.norm(cust[:, None, :] - fac[None, :, :], axis=2)
    nx = C * F
    xi = np.arange(nx)
    ci, fj = xi // F, xi % F
    blocks = [
        sp.csr_matrix((np.ones(nx), (ci, xi)), shape=(C, nx + F)),
        sp.csr_matrix(
            (
                np.concatenate([demand[ci], -cap]),
                (np.concatenate([fj, np.arange(F)]), np.concatenate([xi, nx + np.arange(F)])),
            ),
            shape=(F, nx + F),
        ),
        sp.csr_matrix((cap, (np.zeros(F, int), nx + np.arange(F))), shape=(1, nx + F)),
        sp.csr_matrix(
            (
                np.concatenate([np.ones(nx), -np.ones(nx)]),
                (np.concatenate([xi, xi]), np.concatenate([xi, nx + fj])),
            ),
            shape=(nx, nx + F),
        ),
    ]
    A = sp.vstack(blocks).tocsr()
    row_lo = np.concatenate([np.ones(C), np.full(F, -np.inf), [demand.sum()], np.full(nx, -np.inf)])
    row_hi = np.concatenate([np.ones(C), np.zeros(F), [np.inf], np.zeros(nx)])
    c = np.concatenate([(dist * demand[:, None]).ravel(), fixed])
    return LinearProgram(
        c=c,
        A=A,
        row_lo=row_lo,
        row_hi=row_hi,
        lo=np.zeros(nx + F),
        hi=np.ones(nx + F),
        name=f"facility_{C}x{F}_s{seed}",
    )
