"""The LP models' arithmetic, written once over the array namespace of its inputs (torch or jax.numpy).

Message passing over the padded bipartite variable-constraint graph (:mod:`deq_opt.models.graphs`) gathers
the source node of every edge and sums into the destination nodes. The sum is the one kernel a framework
forces (``index_add_`` in torch, ``segment_sum`` in JAX): each backend passes it in as ``scatter``.
The parameter-holding modules stay in ``torch.py``/``jax.py``; their forward passes call these functions,
with the linear readout heads passed in as functions ``(B, k, d) -> (B, k)``. Norms use ``linalg.norm``
(in numpy, torch and JAX, though not in the array API standard): JAX's ``vector_norm`` is not wrapped in its
own ``jit`` as ``norm`` is, and compiles to differently rounded gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from array_api_compat import array_namespace

__all__ = [
    "capped",
    "explicit_layers",
    "gnn_cell",
    "gnn_weights",
    "pdhg_cell",
    "relative_residual",
    "split_state",
    "supervised_loss",
]

Graph = dict[str, Any]
Scatter = Callable[[Any, Any, int], Any]  # (src (B, E, d), dst (B, E), size) -> (B, size, d)
Head = Callable[[Any], Any]


def spmm(g: Graph, h: Any, transpose: bool, scatter: Scatter) -> Any:
    """``A^ h`` (B, m, d) from (B, n, d), or ``A^T h`` with ``transpose``, by gather + scatter-add."""
    xp = array_namespace(h)
    src_idx, dst_idx = (g["rows"], g["cols"]) if transpose else (g["cols"], g["rows"])
    size = g["var"].shape[1] if transpose else g["con"].shape[1]
    src = xp.take_along_axis(h, src_idx[..., None], axis=1) * g["vals"][..., None]
    return scatter(src, dst_idx, size)


def violation(ax: Any, g: Graph) -> Any:
    """Row-bound violation of the activities ``ax`` (B, m) in the same units (1-Lipschitz in ``ax``)."""
    has_lo, has_hi = g["con"][..., 1], g["con"][..., 3]
    lo, hi = g["bounds"][..., 0], g["bounds"][..., 1]
    return has_lo * _relu(lo - ax) - has_hi * _relu(ax - hi)


def _relu(v: Any) -> Any:
    """``max(v, 0)`` with the gradient 0 at 0 (as ``torch.relu`` and ``jax.nn.relu``)."""
    xp = array_namespace(v)
    return xp.where(v > 0, v, 0.0)


def box_step(x: Any, step: Any, g: Graph) -> Any:
    """``clip(x - step, lo, hi) - x`` within the scaled variable bounds of ``g`` (1-Lipschitz in each)."""
    xp = array_namespace(x)
    has_lo, has_hi = g["var"][..., 2], g["var"][..., 4]
    lo, hi = g["var"][..., 1], g["var"][..., 3]
    moved = x - step
    moved = xp.where(has_lo > 0, xp.maximum(moved, lo), moved)
    moved = xp.where(has_hi > 0, xp.minimum(moved, hi), moved)
    return moved - x


def capped(w: Any, cap: float) -> Any:
    """``w`` rescaled so that its spectral norm is at most ``cap``."""
    xp = array_namespace(w)
    return w * xp.minimum(cap / (xp.linalg.norm(w, 2) + 1e-12), 1.0)


def gnn_weights(cell: dict[str, Any], wx: Any, tau: Any, gamma: float) -> dict[str, Any]:
    """The DEQ-GNN block's weights, capped: ``h_c`` and then ``h_v`` are ``gamma``-Lipschitz in ``h_v``.

    ``cell`` holds ``w1, w2`` (d, d) and ``u, u2, wy`` (d,); ``wx`` is the primal head's weight vector and
    ``tau`` the primal step size.
    """
    xp = array_namespace(wx)
    norm = xp.linalg.norm
    bound1 = norm(cell["w1"], 2) + norm(wx) * norm(cell["u"])
    k1 = xp.minimum(gamma / (bound1 + 1e-12), 1.0)
    step_lip = norm(wx) + tau * norm(cell["wy"]) * gamma
    bound2 = norm(cell["w2"], 2) * gamma + norm(cell["u2"]) * step_lip
    k2 = xp.minimum(gamma / (bound2 + 1e-12), 1.0)
    return {
        "w1": k1 * cell["w1"],
        "u": k1 * cell["u"],
        "w2": k2 * cell["w2"],
        "u2": k2 * cell["u2"],
        "wy": cell["wy"],
    }


def split_state(z: Any, n: int, d: int) -> tuple[Any, Any]:
    """``z`` (B, (n + m) d) as the variable states (B, n, d) and the constraint states (B, m, d)."""
    xp = array_namespace(z)
    B = z.shape[0]
    return xp.reshape(z[:, : n * d], (B, n, d)), xp.reshape(z[:, n * d :], (B, -1, d))


def _join(hv: Any, hc: Any) -> Any:
    """The inverse of :func:`split_state`."""
    xp = array_namespace(hv)
    B = hv.shape[0]
    return xp.concat([xp.reshape(hv, (B, -1)), xp.reshape(hc, (B, -1))], axis=1)


def gnn_cell(z: Any, a: dict[str, Any], w: dict[str, Any], d: int, head_x: Head, scatter: Scatter) -> Any:
    """One DEQ-GNN block on ``z = [h_v, h_c]``; ``a`` holds the encodings ``ev``, ``ec`` and the graph.

    ``x^ = head_x(h_v)``; ``h_c <- tanh(e_c + A^(h_v W1) + viol(A^ x^) u)``; ``y^ = h_c w_y``;
    ``h_v <- tanh(e_v + A^T(h_c W2) + s u2)`` with the projected primal step
    ``s = clip(x^ - tau (a c - A^T y^), lo, hi) - x^``; ``w`` is :func:`gnn_weights`' plus ``tau`` and ``a``.
    """
    xp = array_namespace(z)
    g = a["graph"]
    hv, _ = split_state(z, g["var"].shape[1], d)
    xhat = head_x(hv)
    viol = violation(spmm(g, xhat[..., None], False, scatter)[..., 0], g)
    hc = xp.tanh(a["ec"] + spmm(g, hv @ w["w1"], False, scatter) + viol[..., None] * w["u"])
    yhat = hc @ w["wy"]
    grad = w["a"] * g["var"][..., 0] - spmm(g, yhat[..., None], True, scatter)[..., 0]
    s = box_step(xhat, w["tau"] * grad, g)
    hv = xp.tanh(a["ev"] + spmm(g, hc @ w["w2"], True, scatter) + s[..., None] * w["u2"])
    return _join(hv, hc)


def pdhg_cell(z: Any, a: dict[str, Any], w: tuple[Any, Any, Any, Any], d: int, scatter: Scatter) -> Any:
    """One learned primal-dual step on ``z = [X, Y]`` with the capped weights ``(Wx, Wxy, Wy, Wyx)``.

    ``X' = tanh(X Wx + A^T(Y Wxy) - e_v)``, ``Y' = tanh(Y Wy - A^((2X' - X) Wyx) + e_c)``.
    """
    xp = array_namespace(z)
    g = a["graph"]
    X, Y = split_state(z, g["var"].shape[1], d)
    wx, wxy, wy, wyx = w
    Xn = xp.tanh(X @ wx + spmm(g, Y @ wxy, True, scatter) - a["ev"])
    Yn = xp.tanh(Y @ wy - spmm(g, (2 * Xn - X) @ wyx, False, scatter) + a["ec"])
    return _join(Xn, Yn)


def explicit_layers(
    ev: Any, ec: Any, g: Graph, blocks: Iterable[tuple[Any, Any, Any]], head_x: Head, scatter: Scatter
) -> tuple[Any, Any]:
    """``(h_v, h_c)`` after untied DEQ-GNN-like blocks ``(W1, W2, u)`` (no caps, no primal step) from zero."""
    xp = array_namespace(ev)
    hv, hc = xp.zeros_like(ev), xp.zeros_like(ec)
    for w1, w2, u in blocks:
        viol = violation(spmm(g, head_x(hv)[..., None], False, scatter)[..., 0], g)
        hc = xp.tanh(ec + spmm(g, hv @ w1, False, scatter) + viol[..., None] * u)
        hv = xp.tanh(ev + spmm(g, hc @ w2, True, scatter))
    return hv, hc


def relative_residual(fz: Any, z: Any) -> Any:
    """Per-instance ``||f(z) - z|| / ||f(z)||`` (B,) (denominator at least 1e-12)."""
    xp = array_namespace(z)
    return xp.linalg.norm(fz - z, axis=1) / xp.maximum(xp.linalg.norm(fz, axis=1), 1e-12)


def supervised_loss(px: Any, py: Any, x: Any, y: Any, dual_weight: float) -> Any:
    """Mean squared error of the scaled primal plus ``dual_weight`` times that of the scaled dual."""
    xp = array_namespace(px)
    return xp.mean((px - x) ** 2) + dual_weight * xp.mean((py - y) ** 2)
