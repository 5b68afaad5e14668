"""PyTorch operators on (N, C, H, W) tensors; device- and dtype-agnostic (float32 / float64).

Geometry (kernels' transfer functions, masks, Radon angles) is built once in numpy and moved to the input's
device and dtype on first use (cached per device/dtype). Every operator is differentiable in its input; the
Radon pair is a custom autograd function whose backward is the other map: differentiable to any order.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deq_imaging.operators.blur_geometry import BlurGeometry
from deq_imaging.operators.masks import check_mask
from deq_imaging.operators.radon_geometry import RadonGeometry, fbp_filter
from deq_imaging.operators.shapes import check_batch_shape, check_float_dtype, pair

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_CHUNK_ELEMENTS = 2**23
_GRID_CACHE_BYTES = 2**28  # Radon sampling grids up to this size are built once per device and dtype


def _check(x: torch.Tensor, hw: tuple[int, int], what: str) -> torch.Tensor:
    """Validate a float (N, C, H, W) tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{what}: expected a torch.Tensor of shape (N, C, {hw[0]}, {hw[1]}), got {type(x).__name__}"
        )
    check_batch_shape(x.shape, hw, what)
    check_float_dtype(str(x.dtype), what)
    return x


def _per_image(value: float | torch.Tensor, like: torch.Tensor, what: str) -> torch.Tensor | float:
    """A scalar, or an (N,) tensor reshaped to (N, 1, 1, 1) on ``like``'s device and dtype."""
    if isinstance(value, torch.Tensor) and value.ndim > 0:
        if value.shape != (like.shape[0],):
            raise ValueError(
                f"{what}: expected a scalar or shape ({like.shape[0]},), got {tuple(value.shape)}"
            )
        return value.to(device=like.device, dtype=like.dtype).reshape(-1, 1, 1, 1)
    return float(value)


class _Cached:
    """Caches numpy constants as tensors per (name, device, dtype)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, torch.device, torch.dtype], torch.Tensor] = {}

    def _const(self, name: str, array: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (name, device, dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(array, dtype=dtype, device=device)
        return self._cache[key]

    def _power_norm(self, n_iter: int, device: str | torch.device) -> float:
        """Operator norm by power iteration on ``A* A`` (float64, fixed seed)."""
        gen = torch.Generator(device=device).manual_seed(0)
        x = torch.randn((1, 1, *self.image_shape), generator=gen, dtype=torch.float64, device=device)
        x = x / torch.linalg.vector_norm(x)
        val = torch.zeros((), dtype=torch.float64, device=device)
        for _ in range(n_iter):
            z = self.adjoint(self.forward(x))  # type: ignore[attr-defined]
            val = torch.linalg.vector_norm(z)
            if val == 0:
                return 0.0
            x = z / val
        return float(torch.sqrt(val))


class Identity(_Cached):
    """Identity operator (denoising): ``A x = x``."""

    def __init__(self, image_shape: int | tuple[int, int]) -> None:
        """Identity on (N, C, H, W) images with (H, W) = ``image_shape``."""
        super().__init__()
        self.image_shape = pair(image_shape, "image_shape")
        self.output_shape = self.image_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return x."""
        return _check(x, self.image_shape, "Identity.forward")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Return y."""
        return _check(y, self.output_shape, "Identity.adjoint")

    def norm(self) -> float:
        """Operator norm (1)."""
        return 1.0

    def data_prox(self, y: torch.Tensor, z: torch.Tensor, mu: float | torch.Tensor) -> torch.Tensor:
        """``(I + mu I)^-1 (y + mu z)``; ``mu`` scalar or per image (N,)."""
        y = _check(y, self.output_shape, "Identity.data_prox y")
        z = _check(z, self.image_shape, "Identity.data_prox z")
        m = _per_image(mu, y, "mu")
        return (y + m * z) / (1 + m)


class _FFTBlur(_Cached):
    """Blur by FFT convolution; see :mod:`deq_imaging.operators.blur_geometry` for the conventions."""

    boundary = "circular"

    def __init__(self, kernel: np.ndarray, image_shape: int | tuple[int, int]) -> None:
        """Blur (N, C, H, W) images with ``kernel`` (numpy, centre at ``k.shape // 2``)."""
        super().__init__()
        if isinstance(kernel, torch.Tensor):
            kernel = kernel.detach().cpu().numpy()
        self.geometry = BlurGeometry.build(kernel, pair(image_shape, "image_shape"), self.boundary)
        self.kernel = np.asarray(kernel, dtype=np.float64)
        self.image_shape = self.geometry.image_shape
        self.output_shape = self.geometry.output_shape

    def _otf(self, like: torch.Tensor) -> torch.Tensor:
        return self._const("otf", self.geometry.otf, like.device, _COMPLEX[like.dtype])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad, convolve circularly, crop."""
        x = _check(x, self.image_shape, f"{type(self).__name__}.forward")
        g = self.geometry
        pt, pb, pl, pr = g.pad
        xp = F.pad(x, (pl, pr, pt, pb)) if any(g.pad) else x
        z = torch.fft.irfft2(torch.fft.rfft2(xp) * self._otf(x), s=g.fft_shape)
        r, c = g.crop
        return z[..., r : r + g.output_shape[0], c : c + g.output_shape[1]]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-fill, correlate circularly, crop (exact transpose of forward)."""
        y = _check(y, self.output_shape, f"{type(self).__name__}.adjoint")
        g = self.geometry
        r, c = g.crop
        (ph, pw), (oh, ow) = g.fft_shape, g.output_shape
        yp = F.pad(y, (c, pw - c - ow, r, ph - r - oh)) if g.fft_shape != g.output_shape else y
        w = torch.fft.irfft2(torch.fft.rfft2(yp) * torch.conj(self._otf(y)), s=g.fft_shape)
        pt, _, pl, _ = g.pad
        return w[..., pt : pt + self.image_shape[0], pl : pl + self.image_shape[1]]


class CircularBlur(_FFTBlur):
    """Blur with periodic (circular) boundary: ``A x = k (*) x`` on the torus, output (H, W)."""

    boundary = "circular"

    def norm(self) -> float:
        """Operator norm ``max |K(f)|`` (closed form)."""
        return float(np.abs(self.geometry.otf).max())

    def data_prox(self, y: torch.Tensor, z: torch.Tensor, mu: float | torch.Tensor) -> torch.Tensor:
        """Exact ``(A* A + mu I)^-1 (A* y + mu z)`` by FFT; ``mu`` > 0 scalar or per image (N,)."""
        y = _check(y, self.output_shape, "CircularBlur.data_prox y")
        z = _check(z, self.image_shape, "CircularBlur.data_prox z")
        otf = self._otf(y)
        m = _per_image(mu, y, "mu")
        num = torch.conj(otf) * torch.fft.rfft2(y) + m * torch.fft.rfft2(z)
        return torch.fft.irfft2(num / (otf.abs() ** 2 + m), s=self.image_shape)


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

    def norm(self, n_iter: int = 100, device: str | torch.device = "cpu") -> float:
        """Operator norm by power iteration."""
        return self._power_norm(n_iter, device)


class Inpainting(_Cached):
    """Pixel mask: ``A x = m * x`` with m of shape (H, W) or (C, H, W); missing pixels read as zero."""

    def __init__(self, mask: np.ndarray) -> None:
        """Inpainting with a 0/1 (or [0, 1]) numpy mask."""
        super().__init__()
        self.mask = check_mask(mask)
        self.image_shape = tuple(self.mask.shape[-2:])
        self.output_shape = self.image_shape

    def _apply(self, x: torch.Tensor, what: str) -> torch.Tensor:
        x = _check(x, self.image_shape, what)
        if self.mask.ndim == 3 and x.shape[1] != self.mask.shape[0]:
            raise ValueError(f"{what}: mask has {self.mask.shape[0]} channels, input has {x.shape[1]}")
        return x * self._const("mask", self.mask, x.device, x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``m * x``."""
        return self._apply(x, "Inpainting.forward")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Return ``m * y`` (self-adjoint)."""
        return self._apply(y, "Inpainting.adjoint")

    def norm(self) -> float:
        """Operator norm ``max m`` (closed form)."""
        return float(self.mask.max())

    def data_prox(self, y: torch.Tensor, z: torch.Tensor, mu: float | torch.Tensor) -> torch.Tensor:
        """Exact ``(M + mu I)^-1 (M y + mu z)`` (pixelwise); ``mu`` > 0 scalar or per image (N,)."""
        my = self._apply(y, "Inpainting.data_prox y")
        z = _check(z, self.image_shape, "Inpainting.data_prox z")
        m = _per_image(mu, y, "mu")
        return (my + m * z) / (self._const("mask", self.mask, y.device, y.dtype) + m)


class _RadonForward(torch.autograd.Function):
    """Radon projection whose backward (and forward-mode tangent) is the back-projection (projection)."""

    @staticmethod
    def forward(x: torch.Tensor, op: Radon) -> torch.Tensor:  # type: ignore[override]
        return op._project(x)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:  # type: ignore[override]
        ctx.op = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _RadonAdjoint.apply(grad, ctx.op), None

    @staticmethod
    def jvp(ctx, tangent: torch.Tensor, _: None) -> torch.Tensor:  # type: ignore[override]
        return _RadonForward.apply(tangent, ctx.op)


class _RadonAdjoint(torch.autograd.Function):
    """Back-projection whose backward is the Radon projection (and whose tangent is a back-projection)."""

    @staticmethod
    def forward(y: torch.Tensor, op: Radon) -> torch.Tensor:  # type: ignore[override]
        return op._backproject(y)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:  # type: ignore[override]
        ctx.op = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _RadonForward.apply(grad, ctx.op), None

    @staticmethod
    def jvp(ctx, tangent: torch.Tensor, _: None) -> torch.Tensor:  # type: ignore[override]
        return _RadonAdjoint.apply(tangent, ctx.op)


class Radon(_Cached):
    """Parallel-beam Radon transform, ``skimage.transform.radon`` geometry; sinogram (N, C, n_det, n_angles).

    Forward: bilinear sampling (``grid_sample``, zero outside) along rays, summed; adjoint: the exact
    transpose (the bilinear splat of ``grid_sample``'s input gradient). Angles are processed in chunks.
    """

    def __init__(self, image_size: int, theta: np.ndarray | None = None, circle: bool = True) -> None:
        """Radon transform of (N, C, n, n) images at angles ``theta`` (degrees, default 0..179)."""
        super().__init__()
        self.geometry = RadonGeometry.build(image_size, theta, circle)
        n = self.geometry.image_size
        self.image_shape = (n, n)
        self.output_shape = self.geometry.sinogram_shape

    def _grids(self, like: torch.Tensor, batch: int):
        """Yield (angle slice, normalised sampling grid of shape (1, k * n_s, n_det, 2)) per angle chunk.

        Building the grid costs about as much as sampling it, so a grid that fits ``_GRID_CACHE_BYTES`` is
        built once for all angles and sliced; a larger one is rebuilt chunk by chunk on every call.
        """
        g = self.geometry
        k = max(1, _CHUNK_ELEMENTS // (batch * g.n_det * g.n_det))
        chunks = [slice(a0, min(a0 + k, g.n_angles)) for a0 in range(0, g.n_angles, k)]
        per_angle = g.n_det * g.n_det
        if g.n_angles * per_angle * 2 * like.element_size() <= _GRID_CACHE_BYTES:
            key = ("grid", like.device, like.dtype)
            if key not in self._cache:
                self._cache[key] = self._ray_grid(like, slice(0, g.n_angles))
            full = self._cache[key]
            for sl in chunks:
                yield sl, full[:, sl.start * g.n_det : sl.stop * g.n_det]
        else:
            for sl in chunks:
                yield sl, self._ray_grid(like, sl)

    def _ray_grid(self, like: torch.Tensor, angles: slice) -> torch.Tensor:
        """Normalised sampling points of the rays at ``angles``, shape (1, k * n_s, n_det, 2)."""
        g = self.geometry
        cos, sin = g.cos_sin()
        c = self._const("cos", cos, like.device, like.dtype)[angles, None, None]
        sn = self._const("sin", sin, like.device, like.dtype)[angles, None, None]
        u = self._const("offsets", g.offsets(), like.device, like.dtype)
        t, s = u[None, None, :], u[None, :, None]
        scale = 2.0 / (g.image_size - 1)
        base = g.center - g.pad_before
        cols = (base + t * c + s * sn) * scale - 1
        rows = (base - t * sn + s * c) * scale - 1
        return torch.stack((cols, rows), dim=-1).reshape(1, -1, g.n_det, 2)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        n_img, ch = x.shape[:2]
        b, d = n_img * ch, self.geometry.n_det
        img = x.reshape(1, b, *self.image_shape)
        parts = []
        for _, grid in self._grids(x, b):
            smp = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            parts.append(smp.reshape(b, -1, d, d).sum(dim=2))
        return torch.cat(parts, dim=1).transpose(1, 2).reshape(n_img, ch, d, self.geometry.n_angles)

    def _backproject(self, y: torch.Tensor) -> torch.Tensor:
        n_img, ch = y.shape[:2]
        b, d = n_img * ch, self.geometry.n_det
        yt = y.reshape(b, d, -1).transpose(1, 2)  # (B, A, D)
        template = y.new_zeros(1, 1, 1, 1).expand(1, b, *self.image_shape)
        out = torch.zeros((1, b, *self.image_shape), dtype=y.dtype, device=y.device)
        for sl, grid in self._grids(y, b):
            seg = yt[:, sl, None, :].expand(-1, -1, d, -1).reshape(1, b, -1, d)
            gin, _ = torch.ops.aten.grid_sampler_2d_backward(seg, template, grid, 0, 0, True, [True, False])
            out = out + gin
        return out.reshape(n_img, ch, *self.image_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sinogram of shape (N, C, n_det, n_angles)."""
        return _RadonForward.apply(_check(x, self.image_shape, "Radon.forward"), self)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Back-projection (exact transpose of :meth:`forward`), shape (N, C, n, n)."""
        return _RadonAdjoint.apply(_check(y, self.output_shape, "Radon.adjoint"), self)

    def filter_sinogram(
        self, y: torch.Tensor, filter_name: str = "ramp", cutoff: float = 1.0
    ) -> torch.Tensor:
        """Filter each projection along the detector axis (zero-padded FFT, as skimage iradon)."""
        y = _check(y, self.output_shape, "Radon.filter_sinogram")
        size = self.geometry.filter_size()
        filt = self._const(
            f"filter-{filter_name}-{cutoff}", fbp_filter(size, filter_name, cutoff), y.device, y.dtype
        )
        spec = torch.fft.rfft(y, n=size, dim=-2) * filt[:, None]
        return torch.fft.irfft(spec, n=size, dim=-2)[..., : self.geometry.n_det, :]

    def fbp(self, y: torch.Tensor, filter_name: str = "ramp", cutoff: float = 1.0) -> torch.Tensor:
        """Filtered back-projection ``pi / (2 A) R^T filter(y)``, zero outside the circle if circle=True."""
        rec = self.adjoint(self.filter_sinogram(y, filter_name, cutoff)) * self.geometry.fbp_scale()
        if self.geometry.circle:
            rec = rec * self._const("circle", self.geometry.circle_mask(), y.device, y.dtype)
        return rec

    def norm(self, n_iter: int = 30, device: str | torch.device = "cpu") -> float:
        """Operator norm by power iteration."""
        return self._power_norm(n_iter, device)


def _generator(seed: int | torch.Generator, device: torch.device) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator(device=device).manual_seed(int(seed))


def gaussian_noise(x: torch.Tensor, sigma: float | torch.Tensor, seed: int | torch.Generator) -> torch.Tensor:
    """Return ``x + sigma * N(0, 1)``; ``sigma`` scalar or per image (N,); seeded by an int or a Generator."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(
            f"gaussian_noise: expected a tensor of shape (N, C, H, W), got {getattr(x, 'shape', x)}"
        )
    s = _per_image(sigma, x, "gaussian_noise sigma")
    noise = torch.randn(x.shape, generator=_generator(seed, x.device), device=x.device, dtype=x.dtype)
    return x + s * noise


def poisson_noise(x: torch.Tensor, peak: float | torch.Tensor, seed: int | torch.Generator) -> torch.Tensor:
    """Return ``Poisson(peak * x) / peak`` (x clipped at 0); ``peak`` scalar or per image (N,)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(
            f"poisson_noise: expected a tensor of shape (N, C, H, W), got {getattr(x, 'shape', x)}"
        )
    p = _per_image(peak, x, "poisson_noise peak")
    return torch.poisson(p * x.clamp_min(0), generator=_generator(seed, x.device)) / p
