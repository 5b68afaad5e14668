"""The catalogue of fixed-point problems, defined once over an array namespace, with numpy references.

Each problem builds ``f(z, args, params)`` from a namespace ``xp`` that offers ``tanh`` (``numpy``,
``torch`` or ``jax.numpy``), so the same definition runs in every backend and in the numpy reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deq_core.config import Picard, Stop
from deq_core.engine import iterate, make_solver
from deq_core.engine.numpy_ops import NumpyOps


@dataclass
class Problem:
    """A batch of fixed-point problems: ``make_f(xp)(z, args, params)``, data, and what is known about it."""

    name: str
    make_f: Callable[[Any], Callable]
    params: dict[str, np.ndarray]
    args: np.ndarray
    z0: np.ndarray
    converges: bool = True
    closed_form: np.ndarray | None = None
    notes: dict = field(default_factory=dict)

    def reference(self, tol: float = 1e-14, max_iter: int = 20000) -> np.ndarray:
        """The fixed point by long Picard iteration in float64 (or the closed form when known)."""
        if self.closed_form is not None:
            return self.closed_form
        f = self.make_f(np)
        flat = lambda z: f(z.reshape(self.z0.shape), self.args, self.params).reshape(len(z), -1)
        loop = iterate(
            NumpyOps(), flat, self.z0.reshape(len(self.z0), -1), make_solver(Picard()), Stop(tol), max_iter
        )
        return loop.z.reshape(self.z0.shape)


def _contraction(rng: np.random.Generator, d: int, rate: float) -> np.ndarray:
    """A random ``d x d`` matrix with spectral norm ``rate``."""
    W = rng.standard_normal((d, d))
    return rate * W / np.linalg.norm(W, 2)


def linear(batch: int = 4, d: int = 16, rate: float = 0.9, seed: int = 0) -> Problem:
    """``z = A z + x``: a linear contraction whose fixed point is ``(I - A)^{-1} x``."""
    rng = np.random.default_rng(seed)
    A = _contraction(rng, d, rate)
    x = rng.standard_normal((batch, d))
    closed = np.linalg.solve(np.eye(d) - A, x.T).T
    return Problem(
        "linear",
        lambda xp: lambda z, x, p: z @ p["A"].T + x,
        {"A": A},
        x,
        np.zeros((batch, d)),
        closed_form=closed,
    )


def tanh(batch: int = 4, d: int = 16, rate: float = 0.9, seed: int = 1) -> Problem:
    """``z = tanh(W z + x)``: the classic DEQ cell, contractive with constant ``rate``."""
    rng = np.random.default_rng(seed)
    W = _contraction(rng, d, rate)
    x = rng.standard_normal((batch, d))
    return Problem(
        "tanh", lambda xp: lambda z, x, p: xp.tanh(z @ p["W"].T + x), {"W": W}, x, np.zeros((batch, d))
    )


def per_sample_rates(rates: tuple[float, ...] = (0.3, 0.6, 0.9, 0.97), d: int = 8, seed: int = 2) -> Problem:
    """``z_i = r_i A z_i + x_i``: a different contraction rate per sample (slower ones need more steps).

    Per-sample data travels in ``args``: its last column holds the rate ``r_i``, the others ``x_i``.
    """
    rng = np.random.default_rng(seed)
    A = _contraction(rng, d, 1.0)
    x = rng.standard_normal((len(rates), d))
    closed = np.stack([np.linalg.solve(np.eye(d) - ri * A, xi) for ri, xi in zip(rates, x, strict=True)])
    args = np.concatenate([x, np.asarray(rates)[:, None]], axis=1)
    return Problem(
        "per_sample_rates",
        lambda xp: lambda z, a, p: a[:, -1:] * (z @ p["A"].T) + a[:, :-1],
        {"A": A},
        args,
        np.zeros((len(rates), d)),
        closed_form=closed,
        notes={"rates": rates},
    )


def divergent(batch: int = 3, d: int = 4) -> Problem:
    """``z = z + x + sin(z) / 2`` with ``x = 1``: no fixed point exists, so every solver must report failure.

    (An expanding linear map would not do: Anderson and Broyden solve linear fixed-point equations.)
    """
    x = np.ones((batch, d))
    return Problem(
        "divergent",
        lambda xp: lambda z, x, p: z + x + 0.5 * xp.sin(z),
        {},
        x,
        np.zeros((batch, d)),
        converges=False,
    )


def catalogue() -> list[Problem]:
    """Every convergent problem of the catalogue."""
    return [linear(), tanh(), per_sample_rates()]
