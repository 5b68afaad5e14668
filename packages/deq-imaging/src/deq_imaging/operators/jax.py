"""JAX operators on (N, C, H, W) arrays (float32, or float64 with ``jax_enable_x64``); all work under jit.

Geometry is built once in numpy and enters traced code as constants cast to the input's dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deq_imaging.operators.blur_geometry import BlurGeometry
from deq_imaging.operators.masks import check_mask
from deq_imaging.operators.radon_geometry import RadonGeometry, fbp_filter
from deq_imaging.operators.shapes import check_batch_shape, check_float_dtype, pair

_CHUNK_ELEMENTS = 2**22


def _check(x: jax.Array, hw: tuple[int, int], what: str) -> jax.Array:
    """Validate a float (N, C, H, W) array."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ValueError(
            f"{what}: expected an array of shape (N, C, {hw[0]}, {hw[1]}), got {type(x).__name__}"
        )
    check_batch_shape(x.shape, hw, what)
    check_float_dtype(str(x.dtype), what)
    return jnp.asarray(x)


def _complex(dtype: jnp.dtype) -> jnp.dtype:
    return jnp.complex128 if dtype == jnp.float64 else jnp.complex64


def _per_image(value: float | jax.Array, like: jax.Array, what: str) -> jax.Array | float:
    """A scalar, or an (N,) array reshaped to (N, 1, 1, 1) in ``like``'s dtype."""
    if isinstance(value, int | float):
        return float(value)
    v = jnp.asarray(value, dtype=like.dtype)
    if v.ndim == 0:
        return v
    if v.shape != (like.shape[0],):
        raise ValueError(f"{what}: expected a scalar or shape ({like.shape[0]},), got {v.shape}")
    return v.reshape(-1, 1, 1, 1)


def _power_norm(op: object, image_shape: tuple[int, int], n_iter: int) -> float:
    """Operator norm by power iteration on ``A* A`` (fixed seed; float64 when x64 is enabled)."""
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 1, *image_shape), dtype=dtype)
    step = jax.jit(lambda v: op.adjoint(op.forward(v)))  # type: ignore[attr-defined]
    x = x / jnp.linalg.norm(x)
    val = 0.0
    for _ in range(n_iter):
        z = step(x)
        val = float(jnp.linalg.norm(z))
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

    def forward(self, x: jax.Array) -> jax.Array:
        """Return x."""
        return _check(x, self.image_shape, "Identity.forward")

    def adjoint(self, y: jax.Array) -> jax.Array:
        """Return y."""
        return _check(y, self.output_shape, "Identity.adjoint")

    def norm(self) -> float:
        """Operator norm (1)."""
        return 1.0

    def data_prox(self, y: jax.Array, z: jax.Array, mu: float | jax.Array) -> jax.Array:
        """``(I + mu I)^-1 (y + mu z)``; ``mu`` scalar or per image (N,)."""
        y = _check(y, self.output_shape, "Identity.data_prox y")
        z = _check(z, self.image_shape, "Identity.data_prox z")
        m = _per_image(mu, y, "mu")
        return (y + m * z) / (1 + m)


class _FFTBlur:
    """Blur by FFT convolution; see :mod:`deq_imaging.operators.blur_geometry` for the conventions."""

    boundary = "circular"

    def __init__(self, kernel: np.ndarray, image_shape: int | tuple[int, int]) -> None:
        """Blur (N, C, H, W) images with ``kernel`` (numpy, centre at ``k.shape // 2``)."""
        self.geometry = BlurGeometry.build(
            np.asarray(kernel), pair(image_shape, "image_shape"), self.boundary
        )
        self.kernel = np.asarray(kernel, dtype=np.float64)
        self.image_shape = self.geometry.image_shape
        self.output_shape = self.geometry.output_shape

    def _otf(self, like: jax.Array) -> jax.Array:
        return jnp.asarray(self.geometry.otf, dtype=_complex(like.dtype))

    def forward(self, x: jax.Array) -> jax.Array:
        """Pad, convolve circularly, crop."""
        x = _check(x, self.image_shape, f"{type(self).__name__}.forward")
        g = self.geometry
        pt, pb, pl, pr = g.pad
        xp = jnp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        z = jnp.fft.irfft2(jnp.fft.rfft2(xp) * self._otf(x), s=g.fft_shape).astype(x.dtype)
        r, c = g.crop
        return z[..., r : r + g.output_shape[0], c : c + g.output_shape[1]]

    def adjoint(self, y: jax.Array) -> jax.Array:
        """Zero-fill, correlate circularly, crop (exact transpose of forward)."""
        y = _check(y, self.output_shape, f"{type(self).__name__}.adjoint")
        g = self.geometry
        r, c = g.crop
        (ph, pw), (oh, ow) = g.fft_shape, g.output_shape
        yp = jnp.pad(y, ((0, 0), (0, 0), (r, ph - r - oh), (c, pw - c - ow)))
        w = jnp.fft.irfft2(jnp.fft.rfft2(yp) * jnp.conj(self._otf(y)), s=g.fft_shape).astype(y.dtype)
        pt, _, pl, _ = g.pad
        return w[..., pt : pt + self.image_shape[0], pl : pl + self.image_shape[1]]


class CircularBlur(_FFTBlur):
    """Blur with periodic (circular) boundary: ``A x = k (*) x`` on the torus, output (H, W)."""

    boundary = "circular"

    def norm(self) -> float:
        """Operator norm ``max |K(f)|`` (closed form)."""
        return float(np.abs(self.geometry.otf).max())

    def data_prox(self, y: jax.Array, z: jax.Array, mu: float | jax.Array) -> jax.Array:
        """Exact ``(A* A + mu I)^-1 (A* y + mu z)`` by FFT; ``mu`` > 0 scalar or per image (N,)."""
        y = _check(y, self.output_shape, "CircularBlur.data_prox y")
        z = _check(z, self.image_shape, "CircularBlur.data_prox z")
        otf = self._otf(y)
        m = _per_image(mu, y, "mu")
        num = jnp.conj(otf) * jnp.fft.rfft2(y) + m * jnp.fft.rfft2(z)
        return jnp.fft.irfft2(num / (jnp.abs(otf) ** 2 + m), s=self.image_shape).astype(y.dtype)


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

    def norm(self, n_iter: int = 100) -> float:
        """Operator norm by power iteration."""
        return _power_norm(self, self.image_shape, n_iter)


class Inpainting:
    """Pixel mask: ``A x = m * x`` with m of shape (H, W) or (C, H, W); missing pixels read as zero."""

    def __init__(self, mask: np.ndarray) -> None:
        """Inpainting with a 0/1 (or [0, 1]) numpy mask."""
        self.mask = check_mask(np.asarray(mask))
        self.image_shape = tuple(self.mask.shape[-2:])
        self.output_shape = self.image_shape

    def _apply(self, x: jax.Array, what: str) -> jax.Array:
        x = _check(x, self.image_shape, what)
        if self.mask.ndim == 3 and x.shape[1] != self.mask.shape[0]:
            raise ValueError(f"{what}: mask has {self.mask.shape[0]} channels, input has {x.shape[1]}")
        return x * jnp.asarray(self.mask, dtype=x.dtype)

    def forward(self, x: jax.Array) -> jax.Array:
        """Return ``m * x``."""
        return self._apply(x, "Inpainting.forward")

    def adjoint(self, y: jax.Array) -> jax.Array:
        """Return ``m * y`` (self-adjoint)."""
        return self._apply(y, "Inpainting.adjoint")

    def norm(self) -> float:
        """Operator norm ``max m`` (closed form)."""
        return float(self.mask.max())

    def data_prox(self, y: jax.Array, z: jax.Array, mu: float | jax.Array) -> jax.Array:
        """Exact ``(M + mu I)^-1 (M y + mu z)`` (pixelwise); ``mu`` > 0 scalar or per image (N,)."""
        my = self._apply(y, "Inpainting.data_prox y")
        z = _check(z, self.image_shape, "Inpainting.data_prox z")
        m = _per_image(mu, y, "mu")
        return (my + m * z) / (jnp.asarray(self.mask, dtype=y.dtype) + m)


class Radon:
    """Parallel-beam Radon transform, ``skimage.transform.radon`` geometry; sinogram (N, C, n_det, n_angles).

    Forward: bilinear sampling (zero outside) along rays, summed, over chunks of angles (``lax.map``);
    adjoint: the exact transpose, gathered per pixel (see :meth:`_backproject`).
    """

    def __init__(self, image_size: int, theta: np.ndarray | None = None, circle: bool = True) -> None:
        """Radon transform of (N, C, n, n) images at angles ``theta`` (degrees, default 0..179)."""
        self.geometry = RadonGeometry.build(image_size, theta, circle)
        n = self.geometry.image_size
        self.image_shape = (n, n)
        self.output_shape = self.geometry.sinogram_shape

    def _project(self, x: jax.Array) -> jax.Array:
        g = self.geometry
        n_img, ch = x.shape[:2]
        b, n, d, a = n_img * ch, g.image_size, g.n_det, g.n_angles
        flat = x.reshape(b, n * n)
        k = max(1, min(a, _CHUNK_ELEMENTS // (b * d * d)))
        n_chunks = -(-a // k)
        cos, sin = g.cos_sin()
        cs = np.zeros((2, n_chunks * k))
        cs[0, :a], cs[1, :a] = cos, sin
        cs = jnp.asarray(cs.reshape(2, n_chunks, k).transpose(1, 0, 2), dtype=x.dtype)
        u = jnp.asarray(g.offsets(), dtype=x.dtype)
        t, s = u[None, None, :], u[None, :, None]
        base = g.center - g.pad_before

        def chunk(c_s: jax.Array) -> jax.Array:
            c, sn = c_s[0][:, None, None], c_s[1][:, None, None]
            rows, cols = base - t * sn + s * c, base + t * c + s * sn
            r0, c0 = jnp.floor(rows), jnp.floor(cols)
            fr, fc = rows - r0, cols - c0
            r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
            acc = jnp.zeros((b, *rows.shape), dtype=x.dtype)
            for dr, dc, w in (
                (0, 0, (1 - fr) * (1 - fc)),
                (0, 1, (1 - fr) * fc),
                (1, 0, fr * (1 - fc)),
                (1, 1, fr * fc),
            ):
                r, cc = r0 + dr, c0 + dc
                valid = (r >= 0) & (r < n) & (cc >= 0) & (cc < n)
                idx = jnp.where(valid, r * n + cc, 0)
                acc = acc + jnp.take(flat, idx, axis=1) * jnp.where(valid, w, 0)
            return acc.sum(axis=2)  # (B, k, D)

        out = jax.lax.map(chunk, cs)  # (n_chunks, B, k, D)
        out = out.transpose(1, 0, 2, 3).reshape(b, n_chunks * k, d)[:, :a]
        return out.transpose(0, 2, 1).reshape(n_img, ch, d, a)

    def _backproject(self, y: jax.Array) -> jax.Array:
        """Exact transpose of :meth:`_project` written as a gather (fast on CPU, unlike scatter-add).

        Pixel p receives ``sum_t W_a[t, p] y[t, a]`` with ``W_a[t, p] = sum_s w(q(s, t), p)``, the bilinear
        weights of the ray samples ``q`` within one pixel of p: 4 x 4 candidate samples per pixel and angle.
        """
        g = self.geometry
        n_img, ch = y.shape[:2]
        b, n, d, a = n_img * ch, g.image_size, g.n_det, g.n_angles
        yt = y.reshape(b, d, a).transpose(0, 2, 1)  # (B, A, D)
        k = max(1, min(a, _CHUNK_ELEMENTS // (16 * max(b, 4) * n * n)))
        n_chunks = -(-a // k)
        cos, sin = g.cos_sin()
        cs = np.zeros((3, n_chunks * k))
        cs[0, :a], cs[1, :a], cs[2, :a] = cos, sin, np.arange(a)
        cs = cs.reshape(3, n_chunks, k).transpose(1, 0, 2)
        yt = (
            jnp.pad(yt, ((0, 0), (0, n_chunks * k - a), (0, 0)))
            .reshape(b, n_chunks, k * d)
            .transpose(1, 0, 2)
        )
        pix = jnp.arange(n, dtype=y.dtype) - (g.center - g.pad_before)
        dr, dc = pix[:, None], pix[None, :]
        shifts = jnp.arange(-1, 3, dtype=y.dtype)

        def chunk(args: tuple[jax.Array, jax.Array]) -> jax.Array:
            c_s, y_chunk = args  # (3, k), (B, k * D)
            c, sn = c_s[0][:, None, None], c_s[1][:, None, None]
            t_p, s_p = dc * c - dr * sn, dr * c + dc * sn  # (k, n, n)
            t_c = jnp.floor(t_p)[..., None] + shifts  # (k, n, n, 4) detector candidates
            s_c = jnp.floor(s_p)[..., None] + shifts
            tt, ss = t_c[..., :, None], s_c[..., None, :]  # (k, n, n, 4, 4)
            c5, sn5 = c[..., None, None], sn[..., None, None]
            wr = jnp.maximum(0, 1 - jnp.abs(-tt * sn5 + ss * c5 - dr[..., None, None]))
            wc = jnp.maximum(0, 1 - jnp.abs(tt * c5 + ss * sn5 - dc[..., None, None]))
            s_ok = (ss + g.center >= 0) & (ss + g.center < d)
            w_t = jnp.sum(jnp.where(s_ok, wr * wc, 0), axis=-1)  # (k, n, n, 4)
            t_idx = (t_c + g.center).astype(jnp.int32)
            t_ok = (t_idx >= 0) & (t_idx < d)
            flat_idx = jnp.arange(k, dtype=jnp.int32)[:, None, None, None] * d + jnp.where(t_ok, t_idx, 0)
            vals = jnp.take(y_chunk, flat_idx, axis=1)  # (B, k, n, n, 4)
            return jnp.sum(vals * jnp.where(t_ok, w_t, 0), axis=(1, 4))

        out = jax.lax.map(chunk, (jnp.asarray(cs, dtype=y.dtype), yt))  # (n_chunks, B, n, n)
        return out.sum(axis=0).reshape(n_img, ch, n, n)

    def forward(self, x: jax.Array) -> jax.Array:
        """Sinogram of shape (N, C, n_det, n_angles)."""
        return self._project(_check(x, self.image_shape, "Radon.forward"))

    def adjoint(self, y: jax.Array) -> jax.Array:
        """Back-projection (exact transpose of :meth:`forward`), shape (N, C, n, n)."""
        return self._backproject(_check(y, self.output_shape, "Radon.adjoint"))

    def filter_sinogram(self, y: jax.Array, filter_name: str = "ramp", cutoff: float = 1.0) -> jax.Array:
        """Filter each projection along the detector axis (zero-padded FFT, as skimage iradon)."""
        y = _check(y, self.output_shape, "Radon.filter_sinogram")
        size = self.geometry.filter_size()
        filt = jnp.asarray(fbp_filter(size, filter_name, cutoff), dtype=y.dtype)
        spec = jnp.fft.rfft(y, n=size, axis=-2) * filt[:, None]
        return jnp.fft.irfft(spec, n=size, axis=-2)[..., : self.geometry.n_det, :].astype(y.dtype)

    def fbp(self, y: jax.Array, filter_name: str = "ramp", cutoff: float = 1.0) -> jax.Array:
        """Filtered back-projection ``pi / (2 A) R^T filter(y)``, zero outside the circle if circle=True."""
        rec = self.adjoint(self.filter_sinogram(y, filter_name, cutoff)) * self.geometry.fbp_scale()
        if self.geometry.circle:
            rec = rec * jnp.asarray(self.geometry.circle_mask(), dtype=y.dtype)
        return rec

    def norm(self, n_iter: int = 30) -> float:
        """Operator norm by power iteration."""
        return _power_norm(self, self.image_shape, n_iter)


def gaussian_noise(key: jax.Array, x: jax.Array, sigma: float | jax.Array) -> jax.Array:
    """Return ``x + sigma * N(0, 1)``; ``sigma`` scalar or per image (N,); seeded by a PRNG key."""
    if not hasattr(x, "ndim") or x.ndim != 4:
        raise ValueError(
            f"gaussian_noise: expected an array of shape (N, C, H, W), got {getattr(x, 'shape', x)}"
        )
    s = _per_image(sigma, x, "gaussian_noise sigma")
    return x + s * jax.random.normal(key, x.shape, dtype=x.dtype)


def poisson_noise(key: jax.Array, x: jax.Array, peak: float | jax.Array) -> jax.Array:
    """Return ``Poisson(peak * x) / peak`` (x clipped at 0); ``peak`` scalar or per image (N,)."""
    if not hasattr(x, "ndim") or x.ndim != 4:
        raise ValueError(
            f"poisson_noise: expected an array of shape (N, C, H, W), got {getattr(x, 'shape', x)}"
        )
    p = _per_image(peak, x, "poisson_noise peak")
    return (jax.random.poisson(key, p * jnp.clip(x, 0, None), shape=x.shape).astype(x.dtype)) / p
