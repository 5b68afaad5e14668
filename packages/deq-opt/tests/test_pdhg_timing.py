"""PDHG's effort reporting: solve seconds without JAX's compilation (reported apart), and a progress bar
that counts steps instead of running to ``max_iter``."""

from __future__ import annotations

import numpy as np
import pytest

from deq_opt.baselines.pdhg import PDHGOptions
from deq_opt.baselines.pdhg.reference import solve_pdhg_numpy
from deq_opt.datasets import random_lp


def test_progress_bar_closes_full_at_the_last_step(capsys) -> None:
    """The bar's total is the steps taken when the solve stops (not ``max_iter``); it shows the KKT error."""
    opts = PDHGOptions(tol=1e-6, progress=True)
    res = solve_pdhg_numpy(random_lp(seed=1), opts)
    err = capsys.readouterr().err
    final = err.split("\r")[-1]
    assert res.status == "optimal" and res.iterations < opts.max_iter
    assert f"{res.iterations}/{res.iterations}" in final and "100%" in final
    assert "KKT error" in final and f"/{opts.max_iter}" not in err


def test_jax_compile_time_is_reported_apart() -> None:
    """A first JAX solve reports its compilation in ``compile_seconds``, not in ``seconds``; a second solve
    of the same shapes reuses it and gives the same answer."""
    pytest.importorskip("jax")
    from deq_opt.baselines.pdhg.jax import solve_pdhg_jax

    lp = random_lp(7, 23, 50, seed=5)  # a shape no other test compiles
    opts = PDHGOptions(tol=1e-6)
    first, second = solve_pdhg_jax(lp, opts), solve_pdhg_jax(lp, opts)
    assert first.status == second.status == "optimal"
    assert first.seconds < first.compile_seconds  # compiling the loop takes seconds, this solve milliseconds
    assert second.compile_seconds < first.compile_seconds
    np.testing.assert_array_equal(first.x, second.x)
    assert solve_pdhg_numpy(lp, opts).compile_seconds < first.compile_seconds
