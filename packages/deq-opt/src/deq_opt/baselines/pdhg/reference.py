"""Restarted PDHG in numpy + scipy.sparse: the test oracle the torch and JAX backends are checked against."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP
from deq_opt.baselines.pdhg.solve import EagerBackend, solve_pdhg
from deq_opt.baselines.result import LPResult
from deq_opt.operators.lp import LinearProgram

__all__ = ["solve_pdhg_numpy"]


class _Numpy(EagerBackend):
    """The numpy :class:`~deq_opt.baselines.pdhg.solve.Backend` (float64, scipy CSR products)."""

    name = "numpy"

    def context(self) -> contextlib.AbstractContextManager:
        return np.errstate(divide="ignore", invalid="ignore")  # the step bound may divide by zero

    def problem(self, p: ScaledLP, floats: dict[str, np.ndarray], flags: dict[str, np.ndarray]) -> dict:
        return {**floats, **flags, "A": p.A, "AT": p.AT}

    def asarray(self, v: np.ndarray) -> np.ndarray:
        return np.asarray(v, dtype=np.float64)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)


def solve_pdhg_numpy(
    lp: LinearProgram,
    options: PDHGOptions | None = None,
    *,
    x0: np.ndarray | None = None,
    y0: np.ndarray | None = None,
) -> LPResult:
    """Solve ``lp`` with restarted PDHG in numpy (float64); optional warm start."""
    return solve_pdhg(lp, options, _Numpy(), x0, y0)
