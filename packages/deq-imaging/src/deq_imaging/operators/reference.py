"""Numpy reference operators (N, C, H, W): data generation, classical baselines and test oracle.

Same classes and conventions as :mod:`deq_imaging.operators.torch` and :mod:`deq_imaging.operators.jax`.
"""

from __future__ import annotations

import numpy as np

from deq_imaging.operators.blur_geometry import BlurGeometry
from deq_imaging.operators.masks import check_mask
from deq_imaging.operators.radon_geometry import RadonGeometry, fbp_filter
from deq_imaging.operators.shapes import check_batch_shape, check_float_dtype, pair


def _check(x: np.ndarray, hw: tuple[int, int], what: str) -> np.ndarray:
    """Validate a float (N, C, H, W) array."""
    x = np.asarray(x)
    check_batch_shape(x.shape, hw, what)
    check_float_dtype(str(x.dtype), what)
    return x


def power_norm(op: object, in_shape: tuple[int, int], n_iter: int = 50, seed: int = 0) -> float:
    """Operator-norm estimate ``||A||_2`` by power iteration on ``A* A`` (float64)."""
    x = np.random.default_rng(seed).standard_normal((1, 1, *in_shape))
    x /= np.linalg.norm(x)
    val = 0.0
    for _ in range(n_iter):
        z = op.adjoint(op.forward(x))  # type: ignore[attr-defined]
        val = float(np.linalg.norm(z))
        if val == 0.0:
            return 0.0
        x = z / val
    return float(np.sqrt(val))


class Identity:
    """Identity operator (denoising): ``A x = x``."""

    def __init__(self, image_shape: int | tuple[int, int]) -> None:
        """Identity on (N, C, H, W) images with (H, W) = ``image_shape``."""
        self.image_shape = pair(image_shape, "image_shape")
        self.output_shape = self.image_shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return x."""
        return _check(x, self.image_shape, "Identity.forward").copy()

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """Return y."""
        return _check(y, self.output_shape, "Identity.adjoint").copy()

    def norm(self) -> float:
        """Operator norm (1)."""
        return 1.0


class _FFTBlur:
    """Blur by FFT convolution with a geometry from :class:`BlurGeometry`."""

    boundary = "circular"

    def __init__(self, kernel: np.ndarray, image_shape: int | tuple[int, int]) -> None:
        """Blur (N, C, H, W) images with ``kernel`` (centre at ``k.shape // 2``)."""
        self.geometry = BlurGeometry.build(kernel, pair(image_shape, "image_shape"), self.boundary)
        self.kernel = np.asarray(kernel, dtype=np.float64)
        self.image_shape = self.geometry.image_shape
        self.output_shape = self.geometry.output_shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Pad, convolve circularly, crop."""
        x = _check(x, self.image_shape, f"{type(self).__name__}.forward")
        g = self.geometry
        pt, pb, pl, pr = g.pad
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        z = np.fft.irfft2(np.fft.rfft2(xp) * g.otf, s=g.fft_shape)
        r, c = g.crop
        return z[..., r : r + g.output_shape[0], c : c + g.output_shape[1]].astype(x.dtype)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """Zero-fill, correlate circularly, crop (exact transpose of forward)."""
        y = _check(y, self.output_shape, f"{type(self).__name__}.adjoint")
        g = self.geometry
        r, c = g.crop
        zp = np.zeros((*y.shape[:2], *g.fft_shape), dtype=y.dtype)
        zp[..., r : r + g.output_shape[0], c : c + g.output_shape[1]] = y
        w = np.fft.irfft2(np.fft.rfft2(zp) * np.conj(g.otf), s=g.fft_shape)
        pt, _, pl, _ = g.pad
        return w[..., pt : pt + self.image_shape[0], pl : pl + self.image_shape[1]].astype(y.dtype)


class CircularBlur(_FFTBlur):
    """Blur with periodic (circular) boundary: ``A x = k (*) x`` on the torus, output (H, W)."""

    boundary = "circular"

    def norm(self) -> float:
        """Operator norm: ``max |K(f)|`` (closed form)."""
        return float(np.abs(self.geometry.otf).max())

    def data_prox(self, y: np.ndarray, z: np.ndarray, mu: float) -> np.ndarray:
        """Exact ``(A* A + mu I)^-1 (A* y + mu z)`` by FFT."""
        y = _check(y, self.output_shape, "CircularBlur.data_prox y")
        z = _check(z, self.image_shape, "CircularBlur.data_prox z")
        otf = self.geometry.otf
        num = np.conj(otf) * np.fft.rfft2(y) + mu * np.fft.rfft2(z)
        return np.fft.irfft2(num / (np.abs(otf) ** 2 + mu), s=self.image_shape).astype(y.dtype)


class PaddedBlur(_FFTBlur):
    """Blur without wrap-around: ``"valid"`` (output (H-kh+1, W-kw+1)) or ``"same"`` (zero boundary)."""

    def __init__(
        self, kernel: np.ndarray, image_shape: int | tuple[int, int], boundary: str = "valid"
    ) -> None:
        """Blur with a ``"valid"`` or ``"same"`` (zero-padded) boundary."""
        if boundary not in ("valid", "same"):
            raise ValueError(f"PaddedBlur boundary must be 'valid' or 'same', got {boundary!r}")
        self.boundary = boundary
        super().__init__(kernel, image_shape)

    def norm(self) -> float:
        """Operator norm by power iteration."""
        return power_norm(self, self.image_shape, n_iter=100)


class Inpainting:
    """Pixel mask: ``A x = m * x`` with m of shape (H, W) or (C, H, W); missing pixels read as zero."""

    def __init__(self, mask: np.ndarray) -> None:
        """Inpainting with a 0/1 (or [0, 1]) mask."""
        self.mask = check_mask(mask)
        self.image_shape = tuple(self.mask.shape[-2:])
        self.output_shape = self.image_shape

    def _apply(self, x: np.ndarray, what: str) -> np.ndarray:
        x = _check(x, self.image_shape, what)
        if self.mask.ndim == 3 and x.shape[1] != self.mask.shape[0]:
            raise ValueError(f"{what}: mask has {self.mask.shape[0]} channels, input has {x.shape[1]}")
        return (x * self.mask).astype(x.dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return ``m * x``."""
        return self._apply(x, "Inpainting.forward")

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """Return ``m * y`` (self-adjoint)."""
        return self._apply(y, "Inpainting.adjoint")

    def norm(self) -> float:
        """Operator norm ``max m`` (closed form)."""
        return float(self.mask.max())


def bilinear_corners(rows: np.ndarray, cols: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Flat indices and weights of the 4 bilinear neighbours on an (n, n) grid; outside neighbours weigh 0."""
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    out = []
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        r, c = r0 + dr, c0 + dc
        valid = (r >= 0) & (r < n) & (c >= 0) & (c < n)
        out.append((np.where(valid, r * n + c, 0), np.where(valid, w, 0.0)))
    return out


class Radon:
    """Parallel-beam Radon transform  (skimage ``radon`` geometry); sinogram (N, C, n_det, n_angles)."""

    def __init__(self, image_size: int, theta: np.ndarray | None = None, circle: bool = True) -> None:
        """Radon transform of (N, C, n, n) images at angles ``theta`` (degrees, default 0..179)."""
        self.geometry = RadonGeometry.build(image_size, theta, circle)
        n = self.geometry.image_size
        self.image_shape = (n, n)
        self.output_shape = self.geometry.sinogram_shape

    def _corners(self, angle: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Bilinear neighbours of the sample points of one angle, each (n_s, n_det)."""
        cos, sin = self.geometry.cos_sin()
        rows, cols = self.geometry.sample_points(cos[angle : angle + 1], sin[angle : angle + 1])
        return bilinear_corners(rows[0], cols[0], self.geometry.image_size)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Sinogram: bilinear samples along each ray, summed."""
        x = _check(x, self.image_shape, "Radon.forward")
        flat = x.reshape(*x.shape[:2], -1).astype(np.float64)
        out = np.empty((*x.shape[:2], *self.output_shape))
        for a in range(self.geometry.n_angles):
            out[..., a] = sum(flat[..., idx] * w for idx, w in self._corners(a)).sum(axis=-2)
        return out.astype(x.dtype)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """Back-projection: exact transpose of :meth:`forward` (bilinear splatting)."""
        y = _check(y, self.output_shape, "Radon.adjoint")
        n, d = self.geometry.image_size, self.geometry.n_det
        flat_y = y.reshape(-1, *self.output_shape).astype(np.float64)
        out = np.zeros((flat_y.shape[0], n * n))
        for a in range(self.geometry.n_angles):
            for idx, w in self._corners(a):
                for b in range(out.shape[0]):
                    vals = np.broadcast_to(flat_y[b, None, :, a], (d, d)) * w
                    out[b] += np.bincount(idx.ravel(), weights=vals.ravel(), minlength=n * n)
        return out.reshape(*y.shape[:2], n, n).astype(y.dtype)

    def filter_sinogram(self, y: np.ndarray, filter_name: str = "ramp", cutoff: float = 1.0) -> np.ndarray:
        """Filter each projection along the detector axis (zero-padded FFT, as skimage iradon)."""
        y = _check(y, self.output_shape, "Radon.filter_sinogram")
        size = self.geometry.filter_size()
        filt = fbp_filter(size, filter_name, cutoff)
        spec = np.fft.rfft(y, n=size, axis=-2) * filt[:, None]
        return np.fft.irfft(spec, n=size, axis=-2)[..., : self.geometry.n_det, :].astype(y.dtype)

    def fbp(self, y: np.ndarray, filter_name: str = "ramp", cutoff: float = 1.0) -> np.ndarray:
        """Filtered back-projection ``pi / (2 A) * R^T filter(y)``, zero outside the circle if circle=True."""
        rec = self.adjoint(self.filter_sinogram(y, filter_name, cutoff)) * self.geometry.fbp_scale()
        if self.geometry.circle:
            rec = rec * self.geometry.circle_mask()
        return rec.astype(y.dtype)

    def norm(self) -> float:
        """Operator norm by power iteration."""
        return power_norm(self, self.image_shape, n_iter=30)
