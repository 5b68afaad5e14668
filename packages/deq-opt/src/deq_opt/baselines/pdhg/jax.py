"""Restarted PDHG (PDLP-style) in JAX: segment-sum sparse matvecs, jit-compiled chunks of iterations.

The arithmetic is :mod:`deq_opt.baselines.pdhg.iteration`'s, run under ``jax.jit`` with ``lax.while_loop``;
float64 solves switch ``jax_enable_x64`` on for their duration only. The start, the chunk and the unscaling
are lowered and compiled ahead of the solve (``LPResult.compile_seconds``); problems of one shape reuse them.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deq_opt.baselines.pdhg.iteration import State, initial_state, run_checks, solution
from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP
from deq_opt.baselines.pdhg.solve import Programs, solve_pdhg
from deq_opt.baselines.result import LPResult
from deq_opt.operators.lp import LinearProgram

__all__ = ["solve_pdhg_jax"]


class _Loop:
    """``lax.while_loop`` and ``where``: the control flow of a traced state (its scalars stay traced)."""

    def while_loop(self, cond: Any, body: Any, state: Any) -> Any:
        return jax.lax.while_loop(cond, body, state)

    def select(self, pred: jax.Array, a: State, b: State) -> State:
        return jax.tree.map(lambda u, v: jnp.where(pred, u, v), a, b)

    def host(self, *values: jax.Array) -> tuple[jax.Array, ...]:
        return values

    def where(self, pred: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.where(pred, a, b)

    def ratio(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return a / b


def _matvecs(P: dict, m: int, n: int) -> tuple[Any, Any]:
    """``A v`` and ``A^T v`` as segment sums over the sorted COO entries of ``A`` and ``A^T``."""

    def product(key: str, size: int, v: jax.Array) -> jax.Array:
        terms = P[key + "_data"] * v[P[key + "_cols"]]
        return jax.ops.segment_sum(terms, P[key + "_rows"], num_segments=size, indices_are_sorted=True)

    return functools.partial(product, "A", m), functools.partial(product, "AT", n)


@functools.partial(jax.jit, static_argnames=("m", "n"))
def _start(P: dict, x: jax.Array, y: jax.Array, step: float, weight: float, *, m: int, n: int) -> State:
    """``initial_state`` compiled (one program instead of dozens of eagerly compiled operations)."""
    return initial_state(P, x, y, *_matvecs(P, m, n), step, weight)


_solution = jax.jit(solution)


@functools.partial(jax.jit, static_argnames=("m", "n", "opts", "n_checks"))
def _chunk(P: dict, st: State, *, m: int, n: int, opts: PDHGOptions, n_checks: int) -> State:
    """``run_checks`` compiled; the problem's values are traced: problems of one shape share a compilation."""
    return run_checks(P, st, *_matvecs(P, m, n), _Loop(), opts, n_checks)


def _indices(v: np.ndarray) -> jax.Array:
    """Sparse indices as int32 on the device."""
    return jax.device_put(np.asarray(v, dtype=np.int32))


class _Jax:
    """The JAX :class:`~deq_opt.baselines.pdhg.solve.Backend` in one dtype.

    Arrays go to the device converted on the host (``jax.device_put``): ``jnp.asarray`` would compile a
    program per new shape inside the timed solve.
    """

    name = "jax"

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype

    def context(self) -> contextlib.AbstractContextManager:
        return jax.enable_x64(np.dtype(self.dtype) == np.float64)

    def problem(self, p: ScaledLP, floats: dict[str, np.ndarray], flags: dict[str, np.ndarray]) -> dict:
        P = {key: self.asarray(v) for key, v in floats.items()}
        P |= {key: jax.device_put(np.asarray(v)) for key, v in flags.items()}
        for key, M in (("A", p.A.tocoo()), ("AT", p.AT.tocoo())):
            P |= {key + "_data": self.asarray(M.data), key + "_rows": _indices(M.row)}
            P[key + "_cols"] = _indices(M.col)
        return P

    def asarray(self, v: np.ndarray) -> jax.Array:
        return jax.device_put(np.asarray(v, dtype=self.dtype))

    def programs(
        self, P: dict, x: Any, y: Any, step: float, weight: float, opts: PDHGOptions, n_checks: int
    ) -> Programs:
        """The start, chunk and solution lowered and compiled for these arguments' shapes and dtypes."""
        shape = {"m": P["rlo"].shape[0], "n": P["c"].shape[0]}
        start = _start.lower(P, x, y, step, weight, **shape)
        state = start.out_info
        chunk = _chunk.lower(P, state, opts=opts, n_checks=n_checks, **shape).compile()
        return Programs(start.compile(), chunk, _solution.lower(P, state).compile())

    def to_numpy(self, a: jax.Array) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)


def solve_pdhg_jax(
    lp: LinearProgram,
    options: PDHGOptions | None = None,
    *,
    x0: np.ndarray | None = None,
    y0: np.ndarray | None = None,
    dtype: Any = "float64",
) -> LPResult:
    """Solve ``lp`` with restarted PDHG in JAX (float64 by default, enabled locally); optional warm start."""
    return solve_pdhg(lp, options, _Jax(dtype), x0, y0)
