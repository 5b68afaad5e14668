"""The forward operators on (N, C, H, W) images, written once for numpy, torch and JAX arrays.

Each operator is built from numpy geometry (kernel transfer functions, masks, Radon angles) and computes with
the namespace of the array it is given, in that array's precision and on its device: ``forward``,
``adjoint`` (the exact transpose) and ``norm()``; ``Identity``, ``CircularBlur`` and ``Inpainting`` also have
the exact ``data_prox(y, z, mu) = (A*A + mu I)^-1 (A*y + mu z)`` for a finite ``mu > 0`` (a number or one per
image; :func:`~deq_imaging.operators.arrays.prox_weight` says which values are checked). Every map is
differentiable in torch and JAX and works under ``jax.jit``. Only the Radon transform's sampling kernel
differs per framework (it lives in :mod:`deq_imaging.operators.reference`,
:mod:`~deq_imaging.operators.torch` and :mod:`~deq_imaging.operators.jax`, imported on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_jax_namespace, is_numpy_namespace, is_torch_namespace

from deq_imaging.operators.arrays import AXES, check, constant, power_norm, prox_weight, to_numpy, zero_pad
from deq_imaging.operators.blur_geometry import BlurGeometry
from deq_imaging.operators.masks import check_mask
from deq_imaging.operators.radon_geometry import RadonGeometry, fbp_filter
from deq_imaging.operators.shapes import pair


class Identity:
    """Identity operator (denoising): ``A x = x``."""

    def __init__(self, image_shape: int | tuple[int, int]) -> None:
        """Identity on (N, C, H, W) images with (H, W) = ``image_shape``."""
        self.image_shape = pair(image_shape, "image_shape")
        self.output_shape = self.image_shape

    def forward(self, x: Any) -> Any:
        """Return x."""
        return check(x, self.image_shape, "Identity.forward")

    def adjoint(self, y: Any) -> Any:
        """Return y."""
        return check(y, self.output_shape, "Identity.adjoint")

    def norm(self) -> float:
        """Operator norm (1)."""
        return 1.0

    def data_prox(self, y: Any, z: Any, mu: Any) -> Any:
        """``(I + mu I)^-1 (y + mu z)``; ``mu`` > 0 scalar or per image (N,)."""
        y = check(y, self.output_shape, "Identity.data_prox y")
        z = check(z, self.image_shape, "Identity.data_prox z")
        m = prox_weight(mu, y, "Identity.data_prox")
        return (y + m * z) / (1 + m)


class _FFTBlur:
    """Blur by FFT convolution; see :mod:`deq_imaging.operators.blur_geometry` for the conventions."""

    boundary = "circular"

    def __init__(self, kernel: Any, image_shape: int | tuple[int, int]) -> None:
        """Blur (N, C, H, W) images with ``kernel`` (centre at ``k.shape // 2``)."""
        kernel = to_numpy(kernel)
        self.geometry = BlurGeometry.build(kernel, pair(image_shape, "image_shape"), self.boundary)
        self.kernel = np.asarray(kernel, dtype=np.float64)
        self.image_shape = self.geometry.image_shape
        self.output_shape = self.geometry.output_shape

    def _convolve(self, a: Any, conjugate: bool) -> Any:
        """Circular convolution (or correlation) of ``a`` with the kernel on the FFT grid."""
        xp = array_namespace(a)
        otf = constant(self.geometry.otf, a, complex_=True)
        spectrum = xp.fft.rfftn(a, axes=AXES) * (xp.conj(otf) if conjugate else otf)
        return xp.astype(xp.fft.irfftn(spectrum, s=self.geometry.fft_shape, axes=AXES), a.dtype)

    def forward(self, x: Any) -> Any:
        """Pad, convolve circularly, crop."""
        x = check(x, self.image_shape, f"{type(self).__name__}.forward")
        g = self.geometry
        z = self._convolve(zero_pad(x, *g.pad), conjugate=False)
        r, c = g.crop
        return z[..., r : r + g.output_shape[0], c : c + g.output_shape[1]]

    def adjoint(self, y: Any) -> Any:
        """Zero-fill, correlate circularly, crop (exact transpose of forward)."""
        y = check(y, self.output_shape, f"{type(self).__name__}.adjoint")
        g = self.geometry
        r, c = g.crop
        (ph, pw), (oh, ow) = g.fft_shape, g.output_shape
        w = self._convolve(zero_pad(y, r, ph - r - oh, c, pw - c - ow), conjugate=True)
        pt, _, pl, _ = g.pad
        return w[..., pt : pt + self.image_shape[0], pl : pl + self.image_shape[1]]


class CircularBlur(_FFTBlur):
    """Blur with periodic (circular) boundary: ``A x = k (*) x`` on the torus, output (H, W)."""

    boundary = "circular"

    def norm(self) -> float:
        """Operator norm ``max |K(f)|`` (closed form)."""
        return float(np.abs(self.geometry.otf).max())

    def data_prox(self, y: Any, z: Any, mu: Any) -> Any:
        """Exact ``(A* A + mu I)^-1 (A* y + mu z)`` by FFT; ``mu`` > 0 scalar or per image (N,)."""
        y = check(y, self.output_shape, "CircularBlur.data_prox y")
        z = check(z, self.image_shape, "CircularBlur.data_prox z")
        xp = array_namespace(y)
        otf = constant(self.geometry.otf, y, complex_=True)
        m = prox_weight(mu, y, "CircularBlur.data_prox")
        num = xp.conj(otf) * xp.fft.rfftn(y, axes=AXES) + m * xp.fft.rfftn(z, axes=AXES)
        x = xp.fft.irfftn(num / (xp.abs(otf) ** 2 + m), s=self.image_shape, axes=AXES)
        return xp.astype(x, y.dtype)


class PaddedBlur(_FFTBlur):
    """Blur without wrap-around: ``"valid"`` (output (H-kh+1, W-kw+1)) or ``"same"`` (zero boundary)."""

    def __init__(self, kernel: Any, image_shape: int | tuple[int, int], boundary: str = "valid") -> None:
        """Blur with a ``"valid"`` or ``"same"`` (zero-padded) boundary."""
        if boundary not in ("valid", "same"):
            raise ValueError(f"PaddedBlur boundary must be 'valid' or 'same', got {boundary!r}")
        self.boundary = boundary
        super().__init__(kernel, image_shape)

    def norm(self, n_iter: int = 100) -> float:
        """Operator norm by power iteration (numpy, float64)."""
        return power_norm(self, self.image_shape, n_iter)


class Inpainting:
    """Pixel mask: ``A x = m * x`` with m of shape (H, W) or (C, H, W); missing pixels read as zero."""

    def __init__(self, mask: Any) -> None:
        """Inpainting with a 0/1 (or [0, 1]) mask."""
        self.mask = check_mask(to_numpy(mask))
        self.image_shape = tuple(self.mask.shape[-2:])
        self.output_shape = self.image_shape

    def _apply(self, x: Any, what: str) -> Any:
        x = check(x, self.image_shape, what)
        if self.mask.ndim == 3 and x.shape[1] != self.mask.shape[0]:
            raise ValueError(f"{what}: mask has {self.mask.shape[0]} channels, input has {x.shape[1]}")
        return x * constant(self.mask, x)

    def forward(self, x: Any) -> Any:
        """Return ``m * x``."""
        return self._apply(x, "Inpainting.forward")

    def adjoint(self, y: Any) -> Any:
        """Return ``m * y`` (self-adjoint)."""
        return self._apply(y, "Inpainting.adjoint")

    def norm(self) -> float:
        """Operator norm ``max m`` (closed form)."""
        return float(self.mask.max())

    def data_prox(self, y: Any, z: Any, mu: Any) -> Any:
        """Exact ``(M^2 + mu I)^-1 (M y + mu z)`` (pixelwise); ``mu`` > 0 scalar or per image (N,)."""
        my = self._apply(y, "Inpainting.data_prox y")
        z = check(z, self.image_shape, "Inpainting.data_prox z")
        m = prox_weight(mu, y, "Inpainting.data_prox")
        return (my + m * z) / (constant(self.mask**2, y) + m)


def _sampling_kernel(a: Any) -> Any:
    """The module with the Radon sampling kernel (``project``, ``backproject``) for ``a``'s framework."""
    xp = array_namespace(a)
    for name, matches in (
        ("reference", is_numpy_namespace),
        ("torch", is_torch_namespace),
        ("jax", is_jax_namespace),
    ):
        if matches(xp):
            return importlib.import_module(f"deq_imaging.operators.{name}")
    raise ValueError(f"Radon: no sampling kernel for {xp.__name__} arrays (numpy, torch and JAX have one)")


class Radon:
    """Parallel-beam Radon transform, ``skimage.transform.radon`` geometry; sinogram (N, C, n_det, n_angles).

    Forward: bilinear samples (zero outside the image) along each ray, summed; adjoint: its exact transpose.
    The sampling runs in each framework's own kernel; filtering and FBP are shared.
    """

    def __init__(self, image_size: int, theta: np.ndarray | None = None, circle: bool = True) -> None:
        """Radon transform of (N, C, n, n) images at angles ``theta`` (degrees, default 0..179)."""
        self.geometry = RadonGeometry.build(image_size, theta, circle)
        n = self.geometry.image_size
        self.image_shape = (n, n)
        self.output_shape = self.geometry.sinogram_shape
        self.cache: dict[Any, Any] = {}  # kernel data a framework keeps between calls (torch: ray grids)

    def forward(self, x: Any) -> Any:
        """Sinogram of shape (N, C, n_det, n_angles)."""
        x = check(x, self.image_shape, "Radon.forward")
        return _sampling_kernel(x).project(self, x)

    def adjoint(self, y: Any) -> Any:
        """Back-projection (exact transpose of :meth:`forward`), shape (N, C, n, n)."""
        y = check(y, self.output_shape, "Radon.adjoint")
        return _sampling_kernel(y).backproject(self, y)

    def filter_sinogram(self, y: Any, filter_name: str = "ramp", cutoff: float = 1.0) -> Any:
        """Filter each projection along the detector axis (zero-padded FFT, as skimage iradon)."""
        y = check(y, self.output_shape, "Radon.filter_sinogram")
        xp = array_namespace(y)
        size = self.geometry.filter_size()
        filt = constant(fbp_filter(size, filter_name, cutoff)[:, None], y)
        spec = xp.fft.rfft(y, n=size, axis=-2) * filt
        return xp.astype(xp.fft.irfft(spec, n=size, axis=-2)[..., : self.geometry.n_det, :], y.dtype)

    def fbp(self, y: Any, filter_name: str = "ramp", cutoff: float = 1.0) -> Any:
        """Filtered back-projection ``pi / (2 A) R^T filter(y)``, zero outside the circle if circle=True."""
        rec = self.adjoint(self.filter_sinogram(y, filter_name, cutoff)) * self.geometry.fbp_scale()
        if self.geometry.circle:
            rec = rec * constant(self.geometry.circle_mask(), rec)
        return rec

    def norm(self, n_iter: int = 30) -> float:
        """Operator norm by power iteration (numpy, float64)."""
        return power_norm(self, self.image_shape, n_iter)
