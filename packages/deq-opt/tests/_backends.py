"""The PDHG backends as parametrised test fixtures (each venv holds one backend; the other is skipped)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deq_opt.baselines.result import LPResult


def pdhg_solver(backend: str) -> Callable[..., LPResult]:
    """``solve(lp, options, **kw)`` of ``backend`` ("torch" or "jax"); skips the test when it is missing."""
    pytest.importorskip(backend)
    if backend == "torch":
        from deq_opt.baselines.pdhg.torch import solve_pdhg_torch

        return solve_pdhg_torch
    from deq_opt.baselines.pdhg.jax import solve_pdhg_jax

    return solve_pdhg_jax
