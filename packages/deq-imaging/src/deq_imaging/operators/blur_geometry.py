"""FFT-convolution geometry (numpy) shared by the blur operators of every backend.

Convolution convention: ``y[i] = sum_j k[j] x[i - j + c]`` with kernel centre ``c = (kh // 2, kw // 2)``.
Boundaries:

* ``"circular"``: periodic image, output (H, W); the FFT diagonalises the operator.
* ``"same"``: zero boundary, output (H, W); the image is zero-padded by the kernel size before the FFT and
  the result is cropped, so nothing wraps around (equals ``scipy.signal.convolve(x, k, "same")`` for odd k).
* ``"valid"``: no boundary assumption, output (H - kh + 1, W - kw + 1): only pixels whose whole kernel
  support lies inside the image are kept (equals ``scipy.signal.convolve(x, k, "valid")``).

For every boundary the forward map is pad -> circular convolution -> crop and the adjoint is
zero-fill -> circular correlation -> crop, so the adjoint is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deq_imaging.operators.kernels import check_kernel

BOUNDARIES = ("circular", "same", "valid")


def centered_kernel(kernel: np.ndarray, fft_shape: tuple[int, int]) -> np.ndarray:
    """The kernel zero-padded to (P, Q) and rolled so that its centre sits at pixel (0, 0)."""
    k = check_kernel(kernel)
    p, q = fft_shape
    if k.shape[0] > p or k.shape[1] > q:
        raise ValueError(f"blur kernel of shape {k.shape} is larger than the FFT grid {fft_shape}")
    big = np.zeros((p, q), dtype=np.float64)
    big[: k.shape[0], : k.shape[1]] = k
    return np.roll(big, (-(k.shape[0] // 2), -(k.shape[1] // 2)), axis=(0, 1))


def kernel_otf(kernel: np.ndarray, fft_shape: tuple[int, int]) -> np.ndarray:
    """Real-FFT transfer function (shape (P, Q // 2 + 1), complex128) of a centred kernel on a (P, Q) grid."""
    return np.fft.rfft2(centered_kernel(kernel, fft_shape))


@dataclass(frozen=True)
class BlurGeometry:
    """Padding, FFT grid, crop window and transfer function of a blur with a given boundary."""

    image_shape: tuple[int, int]
    output_shape: tuple[int, int]
    fft_shape: tuple[int, int]
    pad: tuple[int, int, int, int]
    crop: tuple[int, int]
    otf: np.ndarray
    boundary: str

    @classmethod
    def build(cls, kernel: np.ndarray, image_shape: tuple[int, int], boundary: str) -> BlurGeometry:
        """Build the geometry of ``kernel`` acting on (H, W) images with ``boundary``."""
        if boundary not in BOUNDARIES:
            raise ValueError(f"blur boundary must be one of {BOUNDARIES}, got {boundary!r}")
        k = check_kernel(kernel)
        h, w = image_shape
        kh, kw = k.shape
        ch, cw = kh // 2, kw // 2
        if kh > h or kw > w:
            raise ValueError(f"blur kernel of shape {k.shape} is larger than the image shape {image_shape}")
        if boundary == "circular":
            pad, fft_shape, crop, out = (0, 0, 0, 0), (h, w), (0, 0), (h, w)
        elif boundary == "same":
            pad = (ch, kh - 1 - ch, cw, kw - 1 - cw)
            fft_shape, crop, out = (h + kh - 1, w + kw - 1), (ch, cw), (h, w)
        else:
            pad, fft_shape = (0, 0, 0, 0), (h, w)
            crop, out = (kh - 1 - ch, kw - 1 - cw), (h - kh + 1, w - kw + 1)
        return cls(
            image_shape=(h, w),
            output_shape=out,
            fft_shape=fft_shape,
            pad=pad,
            crop=crop,
            otf=kernel_otf(k, fft_shape),
            boundary=boundary,
        )
