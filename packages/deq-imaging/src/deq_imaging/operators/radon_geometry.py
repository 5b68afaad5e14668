"""Parallel-beam CT geometry (numpy), identical to ``skimage.transform.radon``.

Angles are in degrees (default ``0, 1, ..., 179``). The image (square, side n) is rotated about pixel
``center = n_pad // 2`` by bilinear interpolation with zero outside the image and summed along rows, so the
sinogram has shape (n_det, n_angles) with detector ``j`` at offset ``t = j - center`` from the centre.
With ``circle=True`` (default) ``n_det = n`` and the image is assumed zero outside the inscribed circle;
with ``circle=False`` the image is zero-padded to its diagonal, as skimage does.

For angle ``a`` the ray of detector ``t`` samples the image at (row, col) =
``(center - t sin a + s cos a, center + t cos a + s sin a) - pad_before``
for ``s = -center .. n_pad - 1 - center``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deq_imaging.operators.shapes import positive_int

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


@dataclass(frozen=True)
class RadonGeometry:
    """Angles and detector layout of a parallel-beam scan of a square image."""

    image_size: int
    theta: np.ndarray
    circle: bool
    n_det: int
    center: int
    pad_before: int

    @classmethod
    def build(cls, image_size: int, theta: np.ndarray | None = None, circle: bool = True) -> RadonGeometry:
        """Geometry for (image_size, image_size) images at angles ``theta`` (degrees)."""
        if isinstance(image_size, Sequence | np.ndarray) and not isinstance(image_size, str):
            raise ValueError(
                f"Radon image size: expected one int n for square (n, n) images (non-square images are not "
                f"supported), got {image_size!r}"
            )
        n = positive_int(image_size, "Radon image size", minimum=2)
        th = np.arange(180, dtype=np.float64) if theta is None else np.asarray(theta)
        if th.ndim != 1 or th.size < 1 or th.dtype.kind not in "iuf" or not np.all(np.isfinite(th)):
            raise ValueError(
                "theta: expected a non-empty 1-D array of finite angles in degrees (not a count of angles: "
                f"np.linspace(0, 180, count, endpoint=False) spreads count angles), got {theta!r}"
            )
        th = th.astype(np.float64)
        if circle:
            n_pad, pad_before = n, 0
        else:
            pad = int(np.ceil(np.sqrt(2) * n - n))
            pad_before = (n + pad) // 2 - n // 2
            n_pad = n + pad
        return cls(
            image_size=n, theta=th, circle=bool(circle), n_det=n_pad, center=n_pad // 2, pad_before=pad_before
        )

    @property
    def n_angles(self) -> int:
        """Number of projection angles."""
        return int(self.theta.size)

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        """Shape (n_det, n_angles) of one sinogram."""
        return (self.n_det, self.n_angles)

    def cos_sin(self) -> tuple[np.ndarray, np.ndarray]:
        """Cosines and sines of the angles (float64)."""
        rad = np.deg2rad(self.theta)
        return np.cos(rad), np.sin(rad)

    def offsets(self) -> np.ndarray:
        """Detector / ray-position offsets ``-center .. n_det - 1 - center`` (float64)."""
        return np.arange(self.n_det, dtype=np.float64) - self.center

    def sample_points(self, cos: np.ndarray, sin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image (row, col) coordinates, each shape (n_angles, n_s, n_det), of the rays' sample points."""
        u = self.offsets()
        t, s = u[None, None, :], u[None, :, None]
        c, sn = cos[:, None, None], sin[:, None, None]
        base = self.center - self.pad_before
        return base - t * sn + s * c, base + t * c + s * sn

    def circle_mask(self) -> np.ndarray:
        """(n, n) mask of the reconstruction circle used by ``skimage.transform.iradon`` (circle=True)."""
        n = self.image_size
        r = np.arange(n) - n // 2
        return ((r[:, None] ** 2 + r[None, :] ** 2) <= (n // 2) ** 2).astype(np.float64)

    def fbp_scale(self) -> float:
        """Scale ``pi / (2 n_angles)`` that turns a back-projection into filtered back-projection."""
        return float(np.pi / (2 * self.n_angles))

    def filter_size(self) -> int:
        """Zero-padded detector length for FFT filtering (as skimage: a power of two >= 2 n_det, >= 64)."""
        return max(64, int(2 ** np.ceil(np.log2(2 * self.n_det))))


def fbp_filter(size: int, name: str = "ramp", cutoff: float = 1.0) -> np.ndarray:
    """Real-FFT FBP filter of length ``size // 2 + 1`` (skimage's spatially built ramp times a window).

    ``cutoff`` in (0, 1] zeroes frequencies above that fraction of Nyquist.
    """
    if name not in FILTERS:
        raise ValueError(f"FBP filter must be one of {FILTERS}, got {name!r}")
    if not 0.0 < cutoff <= 1.0:
        raise ValueError(f"FBP cutoff must be in (0, 1], got {cutoff}")
    n = np.concatenate((np.arange(1, size / 2 + 1, 2, dtype=int), np.arange(size / 2 - 1, 0, -2, dtype=int)))
    f = np.zeros(size)
    f[0] = 0.25
    f[1::2] = -1 / (np.pi * n) ** 2
    filt = 2 * np.real(np.fft.fft(f))
    omega = np.pi * np.fft.fftfreq(size)[1:]
    if name == "shepp-logan":
        filt[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        filt *= np.fft.fftshift(np.sin(np.linspace(0, np.pi, size, endpoint=False)))
    elif name == "hamming":
        filt *= np.fft.fftshift(np.hamming(size))
    elif name == "hann":
        filt *= np.fft.fftshift(np.hanning(size))
    filt[np.abs(np.fft.fftfreq(size)) > 0.5 * cutoff] = 0.0
    return filt[: size // 2 + 1].copy()
