"""The PDHG backends as parametrised test fixtures (each venv holds one backend; the other is skipped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from deq_opt.baselines.result import LPResult


def pdhg_solver(backend: str, dtype: str = "float64") -> Callable[..., LPResult]:
    """``solve(lp, options, **kw)`` of ``backend`` ("torch" or "jax") in ``dtype``; skips if not installed."""
    pytest.importorskip(backend)
    solve: Any
    if backend == "torch":
        import torch

        from deq_opt.baselines.pdhg.torch import solve_pdhg_torch as solve

        return lambda lp, options=None, **kw: solve(lp, options, dtype=getattr(torch, dtype), **kw)
    from deq_opt.baselines.pdhg.jax import solve_pdhg_jax as solve

    return lambda lp, options=None, **kw: solve(lp, options, dtype=dtype, **kw)
