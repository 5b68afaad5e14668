"""JAX-only behaviour: jit, filter_jit, vmap, and Equinox modules."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from deq_core.jax import DEQ, fixed_point  # noqa: E402
from deq_core.testing import problems  # noqa: E402


class TanhCell(eqx.Module):
    """``z -> tanh(W z + x)``."""

    W: jax.Array

    def __call__(self, z, x):
        return jnp.tanh(z @ self.W.T + x)


def _cell():
    return TanhCell(jnp.asarray(problems.tanh(d=8).params["W"], dtype=jnp.float32))


def test_jit_and_filter_jit_agree_with_eager():
    """``jax.jit`` and ``eqx.filter_jit`` around a solve give the eager answer."""
    cell, x = _cell(), jnp.ones((3, 8))
    eager = fixed_point(cell, jnp.zeros((3, 8)), x, tol=1e-6).value
    jitted = jax.jit(lambda x: fixed_point(cell, jnp.zeros((3, 8)), x, tol=1e-6).value)(x)
    filtered = eqx.filter_jit(lambda m, x: m(x)[0])(DEQ(cell, tol=1e-6), x)
    np.testing.assert_allclose(jitted, eager, atol=1e-6)
    np.testing.assert_allclose(filtered, eager, atol=1e-6)


def test_vmap_over_problems():
    """``jax.vmap`` over a batch of independent solves matches solving each."""
    cell = _cell()
    xs = jnp.stack([jnp.ones((2, 8)), -jnp.ones((2, 8))])
    vmapped = jax.vmap(lambda x: fixed_point(cell, jnp.zeros((2, 8)), x, tol=1e-6).value)(xs)
    for i in range(2):
        np.testing.assert_allclose(
            vmapped[i], fixed_point(cell, jnp.zeros((2, 8)), xs[i], tol=1e-6).value, atol=1e-6
        )


def test_grad_through_deq_module_under_filter_jit():
    """``eqx.filter_grad`` through a jitted DEQ reaches the cell's arrays."""
    deq = DEQ(_cell(), tol=1e-6)

    @eqx.filter_jit
    @eqx.filter_grad
    def grad(model, x):
        return jnp.sum(model(x)[0] ** 2)

    g = grad(deq, jnp.ones((2, 8)))
    assert (
        g.cell.W.shape == (8, 8)
        and bool(jnp.all(jnp.isfinite(g.cell.W)))
        and float(jnp.abs(g.cell.W).sum()) > 0
    )


def test_throw_under_jit_says_which_exception_to_catch():
    """Under ``jit`` a failed solve can only raise equinox's runtime error; its message says so."""

    @eqx.filter_jit
    def solve(x):
        return fixed_point(lambda z, a: z + a, jnp.zeros((2, 3)), x, tol=1e-6, max_iter=20, throw=True).value

    with pytest.raises(eqx.EquinoxRuntimeError, match="catch that exception there, or call outside jit"):
        jax.block_until_ready(solve(jnp.ones((2, 3))))
