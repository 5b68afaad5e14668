"""The torch side of the operators: the Radon sampling kernel (``grid_sample``) and seeded noise.

The operator classes are those of :mod:`deq_imaging.operators.linear`, shared by every backend; they run on
torch tensors of any device, float32 or float64. The Radon pair is a custom autograd function whose backward
is the other map, so it is differentiable to any order; its sampling grids are built once per device and
dtype when they fit ``_GRID_CACHE_BYTES``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deq_imaging.operators.arrays import constant, per_image
from deq_imaging.operators.linear import CircularBlur, Identity, Inpainting, PaddedBlur, Radon  # noqa: F401
from deq_imaging.operators.shapes import check_images

_CHUNK_ELEMENTS = 2**23
_GRID_CACHE_BYTES = 2**28


class _Project(torch.autograd.Function):
    """Radon projection whose backward (and forward-mode tangent) is the back-projection (projection)."""

    @staticmethod
    def forward(x: torch.Tensor, op: Radon) -> torch.Tensor:  # type: ignore[override]
        return _sample(op, x)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:  # type: ignore[override]
        ctx.op = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _Backproject.apply(grad, ctx.op), None

    @staticmethod
    def jvp(ctx, tangent: torch.Tensor, _: None) -> torch.Tensor:  # type: ignore[override]
        return _Project.apply(tangent, ctx.op)


class _Backproject(torch.autograd.Function):
    """Back-projection whose backward is the Radon projection (and whose tangent is a back-projection)."""

    @staticmethod
    def forward(y: torch.Tensor, op: Radon) -> torch.Tensor:  # type: ignore[override]
        return _splat(op, y)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:  # type: ignore[override]
        ctx.op = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _Project.apply(grad, ctx.op), None

    @staticmethod
    def jvp(ctx, tangent: torch.Tensor, _: None) -> torch.Tensor:  # type: ignore[override]
        return _Backproject.apply(tangent, ctx.op)


def project(op: Radon, x: torch.Tensor) -> torch.Tensor:
    """Sinogram of ``x``: bilinear ``grid_sample`` (zero outside) along the rays, summed."""
    return _Project.apply(x, op)


def backproject(op: Radon, y: torch.Tensor) -> torch.Tensor:
    """Exact transpose of :func:`project`: the bilinear splat of ``grid_sample``'s input gradient."""
    return _Backproject.apply(y, op)


def _grids(op: Radon, like: torch.Tensor, batch: int):
    """Yield (angle slice, normalised sampling grid of shape (1, k * n_s, n_det, 2)) per chunk of angles.

    Building the grid costs about as much as sampling it, so a grid that fits ``_GRID_CACHE_BYTES`` is built
    once for all angles (kept in ``op.cache``) and sliced; a larger one is rebuilt chunk by chunk.
    """
    g = op.geometry
    k = max(1, _CHUNK_ELEMENTS // (batch * g.n_det * g.n_det))
    chunks = [slice(a0, min(a0 + k, g.n_angles)) for a0 in range(0, g.n_angles, k)]
    if g.n_angles * g.n_det * g.n_det * 2 * like.element_size() <= _GRID_CACHE_BYTES:
        key = ("grid", like.device, like.dtype)
        if key not in op.cache:
            op.cache[key] = _ray_grid(op, like, slice(0, g.n_angles))
        for sl in chunks:
            yield sl, op.cache[key][:, sl.start * g.n_det : sl.stop * g.n_det]
    else:
        for sl in chunks:
            yield sl, _ray_grid(op, like, sl)


def _ray_grid(op: Radon, like: torch.Tensor, angles: slice) -> torch.Tensor:
    """Normalised sampling points of the rays at ``angles``, shape (1, k * n_s, n_det, 2)."""
    g = op.geometry
    cos, sin = g.cos_sin()
    c = constant(cos, like)[angles, None, None]
    sn = constant(sin, like)[angles, None, None]
    u = constant(g.offsets(), like)
    t, s = u[None, None, :], u[None, :, None]
    scale = 2.0 / (g.image_size - 1)
    base = g.center - g.pad_before
    cols = (base + t * c + s * sn) * scale - 1
    rows = (base - t * sn + s * c) * scale - 1
    return torch.stack((cols, rows), dim=-1).reshape(1, -1, g.n_det, 2)


def _sample(op: Radon, x: torch.Tensor) -> torch.Tensor:
    n_img, ch = x.shape[:2]
    b, d = n_img * ch, op.geometry.n_det
    img = x.reshape(1, b, *op.image_shape)
    parts = []
    for _, grid in _grids(op, x, b):
        smp = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        parts.append(smp.reshape(b, -1, d, d).sum(dim=2))
    return torch.cat(parts, dim=1).transpose(1, 2).reshape(n_img, ch, d, op.geometry.n_angles)


def _splat(op: Radon, y: torch.Tensor) -> torch.Tensor:
    n_img, ch = y.shape[:2]
    b, d = n_img * ch, op.geometry.n_det
    yt = y.reshape(b, d, -1).transpose(1, 2)  # (B, A, D)
    template = y.new_zeros(1, 1, 1, 1).expand(1, b, *op.image_shape)
    out = torch.zeros((1, b, *op.image_shape), dtype=y.dtype, device=y.device)
    for sl, grid in _grids(op, y, b):
        seg = yt[:, sl, None, :].expand(-1, -1, d, -1).reshape(1, b, -1, d)
        gin, _ = torch.ops.aten.grid_sampler_2d_backward(seg, template, grid, 0, 0, True, [True, False])
        out = out + gin
    return out.reshape(n_img, ch, *op.image_shape)


def _generator(seed: int | torch.Generator, device: torch.device) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator(device=device).manual_seed(int(seed))


def gaussian_noise(x: torch.Tensor, sigma: float | torch.Tensor, seed: int | torch.Generator) -> torch.Tensor:
    """Return ``x + sigma * N(0, 1)``; ``sigma`` scalar or per image (N,); seeded by an int or a Generator."""
    s = per_image(sigma, check_images(x, "gaussian_noise"), "gaussian_noise sigma")
    noise = torch.randn(x.shape, generator=_generator(seed, x.device), device=x.device, dtype=x.dtype)
    return x + s * noise


def poisson_noise(x: torch.Tensor, peak: float | torch.Tensor, seed: int | torch.Generator) -> torch.Tensor:
    """Return ``Poisson(peak * x) / peak`` (x clipped at 0); ``peak`` scalar or per image (N,)."""
    p = per_image(peak, check_images(x, "poisson_noise"), "poisson_noise peak")
    return torch.poisson(p * x.clamp_min(0), generator=_generator(seed, x.device)) / p
