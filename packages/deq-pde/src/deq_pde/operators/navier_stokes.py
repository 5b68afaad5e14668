"""Steady incompressible Navier-Stokes on the periodic unit square, pseudo-spectral, vorticity form.

The unknown is the vorticity ``w`` on the periodic ``n x n`` grid ``(x_j, y_i) = (j, i) / n`` (entry
``[i, j]``); the stream function solves ``-Lap psi = w``, the velocity is ``(u, v) = (psi_y, -psi_x)`` and
the steady vorticity equation is

    R(w) = nu Lap w - (u w_x + v w_y) + f = 0,

with ``f`` the (zero-mean) forcing of the vorticity equation. Derivatives are exact in Fourier space; the
product is dealiased by the 2/3 rule (its Fourier modes with ``|k| > n/3`` in either axis are dropped).
:func:`solve` is Newton's method with GMRES on the exact Jacobian-vector product, preconditioned by the
inverse of ``nu Lap``, and a continuation in the forcing amplitude when a full Newton step fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse.linalg as spla

from deq_pde.baselines.result import SolveResult


class NavierStokesError(RuntimeError):
    """The Newton-Krylov solve did not reach its residual tolerance."""


@dataclass(frozen=True)
class SteadyNavierStokes:
    """The discrete steady vorticity equation on an ``n x n`` periodic grid with viscosity ``nu``."""

    n: int
    nu: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 4 or self.n % 2:
            raise ValueError(f"grid size n must be an even integer >= 4, got {self.n!r}")
        if not (isinstance(self.nu, int | float) and np.isfinite(self.nu) and self.nu > 0):
            raise ValueError(f"viscosity nu must be a positive number, got {self.nu!r}")

    @cached_property
    def wavenumbers(self) -> tuple[np.ndarray, np.ndarray]:
        """``(kx, ky)``: the angular wavenumbers ``2 pi k`` of the rfft2 layout, shapes (1, n/2+1), (n, 1)."""
        kx = 2 * np.pi * np.fft.rfftfreq(self.n, 1.0 / self.n)[None, :]
        ky = 2 * np.pi * np.fft.fftfreq(self.n, 1.0 / self.n)[:, None]
        return kx, ky

    @cached_property
    def laplacian(self) -> np.ndarray:
        """The Fourier symbol ``-|k|^2`` of the Laplacian."""
        kx, ky = self.wavenumbers
        return -(kx**2 + ky**2)

    @cached_property
    def inverse_laplacian(self) -> np.ndarray:
        """``1 / -|k|^2`` with the mean mode set to 0 (the zero-mean inverse)."""
        lap = self.laplacian.copy()
        lap[0, 0] = 1.0
        inverse = 1.0 / lap
        inverse[0, 0] = 0.0
        return inverse

    @cached_property
    def dealias(self) -> np.ndarray:
        """The 2/3-rule mask: 1 on the modes with ``|k_x|, |k_y| <= n/3``, 0 elsewhere."""
        k = np.fft.fftfreq(self.n, 1.0 / self.n)
        keep = np.abs(k) <= self.n // 3
        return (keep[:, None] & keep[: self.n // 2 + 1][None, :]).astype(np.float64)

    def _grid(self, w: np.ndarray, what: str) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.n, self.n):
            raise ValueError(f"{what} must have shape ({self.n}, {self.n}), got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError(f"{what} holds NaN or infinite values")
        return w

    def check_forcing(self, f: np.ndarray) -> np.ndarray:
        """``f`` as float64 if it is a finite zero-mean ``(n, n)`` field, else a ValueError saying why."""
        f = self._grid(f, "forcing")
        scale = max(float(np.abs(f).max()), 1e-300)
        if abs(float(f.mean())) > 1e-10 * scale:
            raise ValueError(
                f"forcing must have zero mean (a steady periodic vorticity exists only then), "
                f"got mean {f.mean():.3e} for max |f| {scale:.3e}"
            )
        return f

    def _velocity_gradient(self, w_hat: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(u, v, w_x, w_y)`` on the grid from ``w``'s rfft2, each from the dealiased modes."""
        kx, ky = self.wavenumbers
        w_hat = w_hat * self.dealias
        psi = -w_hat * self.inverse_laplacian  # -Lap psi = w
        fields = (1j * ky * psi, -1j * kx * psi, 1j * kx * w_hat, 1j * ky * w_hat)
        return tuple(np.fft.irfft2(field, s=(self.n, self.n)) for field in fields)

    def _dealiased(self, product: np.ndarray) -> np.ndarray:
        return np.fft.rfft2(product) * self.dealias

    def residual(self, w: np.ndarray, f: np.ndarray) -> np.ndarray:
        """``R(w) = nu Lap w - (u . grad) w + f`` on the grid."""
        w_hat = np.fft.rfft2(self._grid(w, "vorticity"))
        u, v, wx, wy = self._velocity_gradient(w_hat)
        out = self.nu * self.laplacian * w_hat - self._dealiased(u * wx + v * wy)
        return np.fft.irfft2(out, s=(self.n, self.n)) + f

    def jvp(self, w: np.ndarray, dw: np.ndarray) -> np.ndarray:
        """The Jacobian of :meth:`residual` at ``w`` applied to ``dw``."""
        u, v, wx, wy = self._velocity_gradient(np.fft.rfft2(w))
        d_hat = np.fft.rfft2(dw)
        du, dv, dwx, dwy = self._velocity_gradient(d_hat)
        advection = u * dwx + v * dwy + du * wx + dv * wy
        out = self.nu * self.laplacian * d_hat - self._dealiased(advection)
        return np.fft.irfft2(out, s=(self.n, self.n))

    def stokes(self, f: np.ndarray) -> np.ndarray:
        """The Stokes solution ``nu Lap w = -f`` (the start of Newton's method)."""
        return self.precondition(-f)

    def precondition(self, r: np.ndarray) -> np.ndarray:
        """``(nu Lap)^-1 r`` on the zero-mean modes."""
        out = np.fft.rfft2(r) * self.inverse_laplacian / self.nu
        return np.fft.irfft2(out, s=(self.n, self.n))


def residual_norm(problem: SteadyNavierStokes, w: np.ndarray, f: np.ndarray) -> float:
    """The discrete residual ``max |R(w)|`` over the grid (what :func:`solve` drives below ``tol``)."""
    return float(np.abs(problem.residual(w, f)).max())


def _newton(
    problem: SteadyNavierStokes, f: np.ndarray, w: np.ndarray, tol: float, maxiter: int
) -> tuple[np.ndarray, list[float]]:
    """Newton steps from ``w`` until ``max |R| <= tol`` or ``maxiter`` steps (residual history returned)."""
    size = problem.n * problem.n
    shape = (problem.n, problem.n)
    mean = lambda x: np.full(size, x.mean())  # noqa: E731 (pins the mean mode, which R does not see)
    preconditioner = spla.LinearOperator(
        (size, size), matvec=lambda r: problem.precondition(r.reshape(shape)).ravel() + mean(r)
    )
    r = problem.residual(w, f)
    history = [float(np.abs(r).max())]
    for _ in range(maxiter):
        if history[-1] <= tol or not np.isfinite(history[-1]):
            break
        jacobian = spla.LinearOperator(
            (size, size), matvec=lambda d, w=w: problem.jvp(w, d.reshape(shape)).ravel() + mean(d)
        )
        rtol = min(1e-3, max(1e-12, 0.1 * history[-1] / max(history[0], 1e-300)))
        step, _ = spla.gmres(
            jacobian, -r.ravel(), rtol=rtol, atol=0.0, restart=60, maxiter=20, M=preconditioner
        )
        w = w + step.reshape(shape)
        w = w - w.mean()
        r = problem.residual(w, f)
        history.append(float(np.abs(r).max()))
    return w, history


def solve(
    problem: SteadyNavierStokes,
    f: np.ndarray,
    tol: float = 1e-8,
    maxiter: int = 30,
    continuation: int = 4,
    w0: np.ndarray | None = None,
) -> SolveResult:
    """Newton-Krylov solve of ``R(w) = 0`` from the Stokes solution (or ``w0``) to ``max |R| <= tol``.

    If Newton fails from the start, the forcing is ramped up in ``continuation`` equal amplitude steps,
    each solved from the previous one. ``iterations`` counts every Newton step, ``residuals`` are the
    ``max |R|`` of the final stage's iterates; ``converged`` says whether ``tol`` was reached.
    """
    f = problem.check_forcing(f)
    if not tol >= 0 or isinstance(maxiter, bool) or maxiter < 0 or continuation < 1:
        raise ValueError(
            f"need tol >= 0, maxiter >= 0 and continuation >= 1, got {tol}, {maxiter}, {continuation}"
        )
    start = problem.stokes(f) if w0 is None else problem._grid(w0, "initial vorticity w0")
    w, history = _newton(problem, f, start, tol, maxiter)
    steps = len(history) - 1
    if history[-1] > tol and continuation > 1 and w0 is None:  # ramp the forcing up from the Stokes regime
        w = problem.stokes(f / continuation)
        for stage in range(1, continuation + 1):
            w, history = _newton(problem, stage / continuation * f, w, tol, maxiter)
            steps += len(history) - 1
    return SolveResult(w, steps, np.asarray(history), history[-1] <= tol)


def periodic_random_field(
    rng: np.random.Generator, n: int, alpha: float = 2.5, tau: float = 7.0
) -> np.ndarray:
    """Zero-mean periodic Gaussian random field ``N(0, (-Lap + tau^2)^-alpha)`` on the ``n x n`` grid.

    The FNO benchmarks' periodic ``GaussianRF`` (Li et al. 2021, the Navier-Stokes data): Fourier
    coefficients ``tau^(alpha - 1) (4 pi^2 |k|^2 + tau^2)^(-alpha/2)`` times standard normals, the mean mode
    zero; entry ``[i, j]`` sits at ``(x_j, y_i) = (j, i) / n``.
    """
    if n < 2:
        raise ValueError(f"grid size must be at least 2, got {n}")
    if alpha <= 0 or tau <= 0:
        raise ValueError(f"alpha and tau must be positive, got alpha={alpha}, tau={tau}")
    k = np.fft.fftfreq(n, 1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    coef = np.sqrt(2.0) * tau ** (alpha - 1.0) * (4 * np.pi**2 * k2 + tau**2) ** (-alpha / 2.0)
    noise = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    spectrum = n * n * coef * noise / np.sqrt(2.0)
    spectrum[0, 0] = 0.0
    field = np.fft.ifft2(spectrum).real
    return field - field.mean()
