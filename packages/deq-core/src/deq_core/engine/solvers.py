"""Forward fixed-point solvers as ``init``/``step`` pairs over flattened batches ``(batch, n)``.

A solver never decides when to stop: :func:`deq_core.engine.loop.iterate` measures residuals, freezes
converged samples and keeps the best iterate. ``step`` receives the current iterate ``z`` and ``fz = f(z)``
and proposes the next iterate. State is a dict of arrays, so it is a pytree in JAX.
"""

from __future__ import annotations

from typing import Any

from deq_core.config import Anderson, Broyden, Picard
from deq_core.engine.ops import Array, Ops

State = dict[str, Any]


class PicardSolver:
    """``z <- (1 - damping) z + damping f(z)``."""

    def __init__(self, config: Picard):
        self.damping = config.damping

    def init(self, ops: Ops, z: Array) -> State:
        """Picard keeps no state."""
        return {}

    def step(self, ops: Ops, state: State, z: Array, fz: Array) -> tuple[Array, State]:
        """One damped fixed-point step."""
        if self.damping == 1.0:
            return fz, state
        return z + self.damping * (fz - z), state


class AndersonSolver:
    """Anderson acceleration (type II): mix the last ``memory`` images to minimise the mixed residual.

    With ``G_i = f(z_i) - z_i`` over the kept history, solve ``min ||sum a_i G_i||`` s.t. ``sum a_i = 1``
    by the normal equations ``(G G^T + ridge I) w = 1``, ``a = w / sum w``. Rows of ``G`` are first scaled
    by the largest row norm, which makes ``ridge`` relative and keeps the solve well conditioned in float32.
    """

    def __init__(self, config: Anderson):
        self.memory = config.memory
        self.ridge = config.ridge
        self.damping = config.damping

    def init(self, ops: Ops, z: Array) -> State:
        """Empty histories of iterates ``X`` and images ``F``, shape ``(batch, memory, n)``."""
        batch, n = z.shape
        return {
            "X": ops.zeros((batch, self.memory, n), z),
            "F": ops.zeros((batch, self.memory, n), z),
            "count": 0,
        }

    def step(self, ops: Ops, state: State, z: Array, fz: Array) -> tuple[Array, State]:
        """Store ``(z, f(z))`` in the ring buffer and return the Anderson mix."""
        m, batch = self.memory, z.shape[0]
        count = state["count"]
        X = ops.set_slot(state["X"], count % m, z)
        F = ops.set_slot(state["F"], count % m, fz)
        index = ops.arange(m, z)
        valid = index < ops.minimum(count + 1, m)  # (m,): which history slots are filled
        G = F - X
        G_const = ops.stop_gradient(G)  # the scale only conditions the solve: alpha does not depend on it
        scale = ops.max(ops.sqrt(ops.sum(G_const * G_const, axis=2)), axis=1)  # (batch,)
        Gn = G / ops.maximum(scale, ops.tiny(z))[:, None, None]
        eye = ops.where(index[:, None] == index[None, :], ops.full((m, m), 1.0, z), ops.zeros((m, m), z))
        both = valid[:, None] & valid[None, :]
        H = ops.where(both, Gn @ ops.transpose(Gn) + self.ridge * eye, eye)  # unused slots: identity
        rhs = ops.where(valid, ops.full((batch, m), 1.0, z), ops.zeros((batch, m), z))
        w = ops.solve(H, rhs)
        alpha = (w / ops.sum(w, axis=1)[:, None])[:, None, :]  # (batch, 1, m)
        mix_f = (alpha @ F)[:, 0]
        if self.damping == 1.0:
            z_next = mix_f
        else:
            mix_x = (alpha @ X)[:, 0]
            z_next = mix_x + self.damping * (mix_f - mix_x)
        return z_next, {"X": X, "F": F, "count": count + 1}


class BroydenSolver:
    """Limited-memory "good" Broyden on ``g(z) = f(z) - z``.

    The inverse Jacobian of ``g`` is approximated as ``-I + sum_i u_i v_i^T`` over the last ``memory``
    rank-one updates (a ring buffer); the step is ``z <- z - J^{-1} g(z)``, so the first step is Picard.
    """

    def __init__(self, config: Broyden):
        self.memory = config.memory

    def init(self, ops: Ops, z: Array) -> State:
        """Empty update buffers and the previous iterate/residual (the first update is a no-op)."""
        batch, n = z.shape
        return {
            "U": ops.zeros((batch, self.memory, n), z),
            "V": ops.zeros((batch, self.memory, n), z),
            "z_prev": z,
            "g_prev": ops.zeros((batch, n), z),
            "count": 0,
        }

    def step(self, ops: Ops, state: State, z: Array, fz: Array) -> tuple[Array, State]:
        """Apply the rank-one update for the last step, then take the quasi-Newton step."""
        U, V = state["U"], state["V"]
        g = fz - z
        dz = z - state["z_prev"]
        dg = g - state["g_prev"]
        vt = -dz + _bmv_t(V, U @ dz[:, :, None])  # dz^T J^{-1}
        jdg = -dg + _bmv_t(U, V @ dg[:, :, None])  # J^{-1} dg
        den = ops.dot(vt, dg)
        ok = (ops.abs(den) > 1e3 * ops.tiny(z))[:, None]
        safe = ops.where(ok, den[:, None], 1.0)
        u = ops.where(ok, (dz - jdg) / safe, 0.0)
        vt = ops.where(ok, vt, 0.0)
        slot = state["count"] % self.memory
        U = ops.set_slot(U, slot, u)
        V = ops.set_slot(V, slot, vt)
        update = g - _bmv_t(U, V @ g[:, :, None])  # -J^{-1} g
        new_state = {"U": U, "V": V, "z_prev": z, "g_prev": g, "count": state["count"] + 1}
        return z + update, new_state


def _bmv_t(M: Array, coeffs: Array) -> Array:
    """``sum_i coeffs[:, i] * M[:, i, :]`` for ``M`` ``(batch, m, n)`` and ``coeffs`` ``(batch, m, 1)``."""
    return (M * coeffs).sum(1)


def make_solver(config: Picard | Anderson | Broyden) -> PicardSolver | AndersonSolver | BroydenSolver:
    """The solver object for a forward-solver config."""
    if isinstance(config, Picard):
        return PicardSolver(config)
    if isinstance(config, Anderson):
        return AndersonSolver(config)
    if isinstance(config, Broyden):
        return BroydenSolver(config)
    raise TypeError(f"no forward solver for {config!r}")
