"""The JAX side of the operators: the Radon sampling kernel (gathers under ``lax.map``) and seeded noise.

The operator classes are those of :mod:`deq_imaging.operators.linear`, shared by every backend; they run on
JAX arrays (float32, or float64 with ``jax_enable_x64``) and under ``jax.jit``. The projection gathers the
four bilinear neighbours of every ray sample; the back-projection, its exact transpose, is written as a
gather per pixel too (fast on CPU, unlike scatter-add). Both run over chunks of angles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deq_imaging.operators.arrays import per_image
from deq_imaging.operators.linear import CircularBlur, Identity, Inpainting, PaddedBlur, Radon  # noqa: F401
from deq_imaging.operators.shapes import check_images

_CHUNK_ELEMENTS = 2**22


def project(op: Radon, x: jax.Array) -> jax.Array:
    """Sinogram of ``x``: bilinear samples (zero outside) along the rays, summed."""
    g = op.geometry
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


def backproject(op: Radon, y: jax.Array) -> jax.Array:
    """Exact transpose of :func:`project`, written as a gather.

    Pixel p receives ``sum_t W_a[t, p] y[t, a]`` with ``W_a[t, p] = sum_s w(q(s, t), p)``, the bilinear
    weights of the ray samples ``q`` within one pixel of p: 4 x 4 candidate samples per pixel and angle.
    """
    g = op.geometry
    n_img, ch = y.shape[:2]
    b, n, d, a = n_img * ch, g.image_size, g.n_det, g.n_angles
    yt = y.reshape(b, d, a).transpose(0, 2, 1)  # (B, A, D)
    k = max(1, min(a, _CHUNK_ELEMENTS // (16 * max(b, 4) * n * n)))
    n_chunks = -(-a // k)
    cos, sin = g.cos_sin()
    cs = np.zeros((3, n_chunks * k))
    cs[0, :a], cs[1, :a], cs[2, :a] = cos, sin, np.arange(a)
    cs = cs.reshape(3, n_chunks, k).transpose(1, 0, 2)
    yt = jnp.pad(yt, ((0, 0), (0, n_chunks * k - a), (0, 0))).reshape(b, n_chunks, k * d).transpose(1, 0, 2)
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


def gaussian_noise(key: jax.Array, x: jax.Array, sigma: float | jax.Array) -> jax.Array:
    """Return ``x + sigma * N(0, 1)``; ``sigma`` scalar or per image (N,); seeded by a PRNG key."""
    s = per_image(sigma, check_images(x, "gaussian_noise"), "gaussian_noise sigma")
    return x + s * jax.random.normal(key, x.shape, dtype=x.dtype)


def poisson_noise(key: jax.Array, x: jax.Array, peak: float | jax.Array) -> jax.Array:
    """Return ``Poisson(peak * x) / peak`` (x clipped at 0); ``peak`` scalar or per image (N,)."""
    p = per_image(peak, check_images(x, "poisson_noise"), "poisson_noise peak")
    return (jax.random.poisson(key, p * jnp.clip(x, 0, None), shape=x.shape).astype(x.dtype)) / p
