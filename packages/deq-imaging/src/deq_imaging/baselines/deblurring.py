"""Classical non-blind deblurring: Wiener, unsupervised Wiener, Richardson-Lucy, BM3D plug-and-play.

Wiener, unsupervised Wiener and BM3D assume a circular blur (``CircularBlur``); Richardson-Lucy assumes a zero
boundary (``PaddedBlur(boundary="same")``) by default, or a circular one.
Kernels have their centre at ``k.shape // 2``.
"""

from __future__ import annotations

import bm3d
import numpy as np
from skimage.restoration import unsupervised_wiener, wiener

from deq_imaging.baselines.base import Baseline
from deq_imaging.operators.blur_geometry import centered_kernel
from deq_imaging.operators.kernels import check_kernel
from deq_imaging.operators.reference import CircularBlur, PaddedBlur


class WienerDeblur(Baseline):
    """Wiener-Hunt deconvolution (``skimage.restoration.wiener``, Laplacian prior); ``weight`` = balance."""

    grid = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3)

    def __init__(self, kernel: np.ndarray, weight: float = 0.01) -> None:
        """Wiener deconvolution of ``kernel`` with regularisation ``weight``."""
        super().__init__(weight)
        self.kernel = check_kernel(kernel)

    def _restore(self, y: np.ndarray) -> np.ndarray:
        return np.stack([wiener(c, self.kernel, self.weight, clip=False) for c in y])


class UnsupervisedWienerDeblur(Baseline):
    """Unsupervised Wiener-Hunt (Gibbs sampler); ``weight`` scales the estimated balance.

    The result is the Wiener filter with balance ``weight * prior_precision / noise_precision``, the
    precisions averaged over the sampler's chain (``skimage.restoration.unsupervised_wiener``, seeded).
    """

    grid = (0.1, 0.3, 0.5, 1.0, 2.0, 4.0)

    def __init__(self, kernel: np.ndarray, weight: float = 1.0, seed: int = 0) -> None:
        """Unsupervised Wiener with balance multiplier ``weight``."""
        super().__init__(weight)
        self.kernel, self.seed = check_kernel(kernel), seed

    def _restore(self, y: np.ndarray) -> np.ndarray:
        out = []
        for c in y:
            _, chains = unsupervised_wiener(c, self.kernel, clip=False, rng=self.seed)
            balance = float(np.mean(chains["prior"]) / np.mean(chains["noise"]))
            out.append(wiener(c, self.kernel, self.weight * balance, clip=False))
        return np.stack(out)


class RichardsonLucy(Baseline):
    """Richardson-Lucy, ``u <- u * A*(y / A u) / A* 1``, for a circular or zero ("same") boundary blur;
    ``weight`` = number of iterations (early stopping regularises).

    The ``A* 1`` normalisation keeps the zero-boundary case from blowing up at the borders, which
    ``skimage.restoration.richardson_lucy`` (unnormalised) does.
    """

    grid = (5, 10, 20, 30, 50, 80)

    def __init__(self, kernel: np.ndarray, weight: int = 30, boundary: str = "same") -> None:
        """Richardson-Lucy with ``weight`` iterations for a ``"same"`` (zero) or ``"circular"`` boundary."""
        super().__init__(weight)
        if boundary not in ("same", "circular"):
            raise ValueError(f"RichardsonLucy boundary must be 'same' or 'circular', got {boundary!r}")
        self.kernel, self.boundary = check_kernel(kernel), boundary

    def _restore(self, y: np.ndarray) -> np.ndarray:
        shape = y.shape[1:]
        op = (
            CircularBlur(self.kernel, shape)
            if self.boundary == "circular"
            else PaddedBlur(self.kernel, shape, "same")
        )
        y = np.clip(y, 0, None)[None]
        norm = np.maximum(op.adjoint(np.ones_like(y)), 1e-12)
        u = np.full_like(y, max(float(y.mean()), 1e-6))
        for _ in range(int(self.weight)):
            u = u * op.adjoint(y / np.maximum(op.forward(u), 1e-12)) / norm
        return u[0]


class BM3DDeblur(Baseline):
    """Plug-and-play HQS deblurring with BM3D (as DPIR, with BM3D as the denoiser), circular boundary.

    Alternates the exact regularised FFT inverse ``x = (A*A + mu_k I)^-1 (A* y + mu_k z)`` with
    ``z = bm3d(x, s_k)``, the denoiser strength ``s_k`` decreasing geometrically from ``max(0.19, sigma)``
    to the noise std ``sigma``; ``mu_k = weight * sigma^2 / s_k^2`` (``weight`` = prior weight lambda). Uses
    ``bm3d.bm3d`` on 2-D white-noise inputs (``bm3d.bm3d_deblurring`` 4.0.3 fails on numpy 2).
    """

    grid = (0.05, 0.1, 0.2, 0.4, 0.8)

    def __init__(self, kernel: np.ndarray, sigma: float, weight: float = 0.2, num_iter: int = 4) -> None:
        """BM3D plug-and-play deblurring for known noise std ``sigma`` with prior weight ``weight``."""
        super().__init__(weight)
        if not sigma > 0 or num_iter < 1:
            raise ValueError(f"BM3DDeblur: need sigma > 0 and num_iter >= 1, got {sigma}, {num_iter}")
        self.kernel, self.sigma, self.num_iter = check_kernel(kernel), float(sigma), int(num_iter)

    def _restore(self, y: np.ndarray) -> np.ndarray:
        h, w = y.shape[1:]
        otf = np.fft.fft2(centered_kernel(self.kernel, (h, w)))
        strengths = np.geomspace(max(0.19, self.sigma), self.sigma, self.num_iter)
        out = []
        for c in y:
            aty, z = np.conj(otf) * np.fft.fft2(c), c
            for s_k in strengths:
                mu = self.weight * self.sigma**2 / s_k**2
                x = np.real(np.fft.ifft2((aty + mu * np.fft.fft2(z)) / (np.abs(otf) ** 2 + mu)))
                z = bm3d.bm3d(x, s_k)
            out.append(z)
        return np.stack(out)
