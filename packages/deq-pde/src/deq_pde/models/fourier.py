"""The math of the FNOs, written once over an array namespace: torch, JAX and numpy run the same lines.

The modules of :mod:`deq_pde.models.torch` and :mod:`deq_pde.models.jax` hold the parameters and call these
functions in their forward passes; what a framework forces (its GELU, its way of cutting a gradient, its
1x1 convolution) is passed in or stays in the module.

The FNO-DEQ cell is ``z -> gelu(s (K z + W z) + x + b)``: ``K`` a spectral convolution on the lowest
``modes`` x ``modes`` frequencies, ``W`` a 1x1 convolution with bias ``b`` and ``x = K v + W v`` the injected
lifted input ``v``, so the first iterate from ``z = 0`` is the explicit depth-1 FNO layer with the same
weights. With ``contraction = c`` the linear part is rescaled by ``s = min(1, c / ||K + W||)``, the operator
norm being the largest singular value over the Fourier modes of ``K_mode + W`` (and of ``W`` alone); as GELU
is 1.13-Lipschitz, ``c < 0.88`` makes the cell a contraction, so iterates from any start converge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from array_api_compat import array_namespace, device

Array = Any
POWER_ITERS = 10


def spectral_conv(z: Array, weight: Array, modes: int) -> Array:
    """``K z`` for ``z`` (B, C, H, W) and complex ``weight`` (2, C, C, modes, modes): two corners of rfft2."""
    xp = array_namespace(z)
    b, c, h, w = z.shape
    zf = xp.fft.rfftn(z, axes=(-2, -1))
    m1, m2 = min(modes, h // 2), min(modes, w // 2 + 1)
    top = xp.einsum("bixy,ioxy->boxy", zf[:, :, :m1, :m2], weight[0, :, :, :m1, :m2])
    bottom = xp.einsum("bixy,ioxy->boxy", zf[:, :, h - m1 :, :m2], weight[1, :, :, :m1, :m2])
    middle = xp.zeros((b, c, h - 2 * m1, m2), dtype=zf.dtype, device=device(zf))
    left = xp.concat([top, middle, bottom], axis=2)
    right = xp.zeros((b, c, h, zf.shape[-1] - m2), dtype=zf.dtype, device=device(zf))
    out = xp.fft.irfftn(xp.concat([left, right], axis=3), s=(h, w), axes=(-2, -1))
    return xp.astype(out, z.dtype)


def layer_output(linear: Array, args: tuple[Array, Array] | None, bias: Array, gelu: Callable) -> Array:
    """An explicit layer ``gelu(linear)`` (``linear = K z + W z``), or with ``args = (x, s)`` a cell step.

    ``bias`` (C,) is the 1x1 convolution's bias, already inside ``linear``; the cell scales only the rest.
    """
    if args is None:
        return gelu(linear)
    x, scale = args
    bias = bias[:, None, None]
    return gelu(scale * (linear - bias) + bias + x)


def mode_matrices(weight: Array, pointwise: Array) -> Array:
    """The complex (modes + 1, out, in) matrices ``K_mode + W`` per kept Fourier mode, and ``W`` last.

    ``weight`` is the complex spectral weight (2, in, out, m, m), ``pointwise`` the (out, in) 1x1 weight.
    """
    xp = array_namespace(weight)
    modes = xp.permute_dims(weight, (0, 3, 4, 2, 1))
    modes = xp.reshape(modes, (-1, weight.shape[2], weight.shape[1]))
    pointwise = xp.astype(pointwise, modes.dtype)
    return xp.concat([modes + pointwise, pointwise[None, ...]])


def operator_norm(
    matrices: Array, stop_gradient: Callable[[Array], Array], iters: int = POWER_ITERS
) -> Array:
    """Largest spectral norm of ``matrices`` (M, n, n): power iteration on every ``M^H M``.

    ``iters`` rounds from a fixed start on the matrices cut from the gradient, then ``max ||M v||``
    (differentiable in the matrices).
    """
    xp = array_namespace(matrices)
    count, size = matrices.shape[0], matrices.shape[-1]
    real = xp.real(matrices).dtype
    start = 1.5 + xp.cos(1.7 * xp.arange(size, dtype=real, device=device(matrices)))
    v = xp.broadcast_to(xp.astype(start, matrices.dtype), (count, size))[..., None]
    fixed = stop_gradient(matrices)
    for _ in range(iters):
        v = xp.conj(xp.matrix_transpose(fixed)) @ (fixed @ v)
        v = v / xp.linalg.vector_norm(v, axis=1, keepdims=True)
    return xp.max(xp.linalg.vector_norm(matrices @ stop_gradient(v), axis=1))


def contraction_scale(contraction: float, norm: Array) -> Array:
    """``min(1, c / ||K + W||)``: the factor that makes the layer a contraction."""
    xp = array_namespace(norm)
    return xp.clip(contraction / norm, max=1.0)


def codec_scales(inputs: Array, outputs: Array) -> Array:
    """The normalisation ``(mean, std)`` of the inputs and of the outputs, as one array of 4."""
    xp = array_namespace(inputs, outputs)
    stats = (xp.mean(inputs), xp.std(inputs, correction=1), xp.mean(outputs), xp.std(outputs, correction=1))
    return xp.stack(stats)


def lift_input(a: Array, scales: Array, grid: Array) -> Array:
    """(B, n, n) raw input -> (B, 3, n, n): the normalised input and the (2, n, n) grid channels."""
    if a.ndim != 3 or tuple(a.shape[1:]) != tuple(grid.shape[1:]):
        raise ValueError(f"input must have shape (B, {grid.shape[1]}, {grid.shape[2]}), got {tuple(a.shape)}")
    xp = array_namespace(a, grid)
    a = xp.astype((a - scales[0]) / scales[1], grid.dtype)[:, None, ...]
    return xp.concat([a, xp.broadcast_to(grid, (a.shape[0], *grid.shape))], axis=1)


def denormalize(u: Array, scales: Array) -> Array:
    """The raw solution from the projection's normalised output."""
    return u * scales[3] + scales[2]


def relative_l2(pred: Array, target: Array) -> Array:
    """Per-sample ``||pred - target|| / ||target||`` over the grid."""
    xp = array_namespace(pred, target)
    norm = lambda x: xp.linalg.vector_norm(xp.reshape(x, (x.shape[0], -1)), axis=1)  # noqa: E731
    return norm(pred - target) / norm(target)


def explicit_forward(codec: Any, layers: Any, a: Array) -> Array:
    """An explicit FNO's prediction: ``codec`` lifts, each of ``layers`` in turn, ``codec`` projects."""
    z = codec.encode(a)
    for layer in layers:
        z = layer(z)
    return codec.decode(z)


def equilibrium(model: Any, a: Array, z0: Array | None) -> tuple[Array, Array]:
    """``(u, z)`` of an FNO-DEQ: prediction and hidden state after its training budget from ``z0``."""
    x = model.inject(a)
    z0 = array_namespace(x).zeros_like(x) if z0 is None else z0
    z, _ = model.deq((x, model.deq.cell.scale()), z0)
    return model.codec.decode(z), z


def budget(model: Any, a: Array, steps: int, iterate_exactly: Callable) -> Array:
    """An FNO-DEQ's prediction after exactly ``steps`` iterations from zero (the backend's iteration)."""
    x, cell = model.inject(a), model.deq.cell
    z0 = array_namespace(x).zeros_like(x)
    return model.codec.decode(iterate_exactly(cell, z0, (x, cell.scale()), steps, model.deq.options.solver))


def training_loss(pred: Array, target: Array) -> Array:
    """The mean relative L2 error of a batch (the target cast to the prediction's dtype), differentiable."""
    xp = array_namespace(pred, target)
    return xp.mean(relative_l2(pred, xp.astype(target, pred.dtype)))


def implicit_loss(model: Any, data: tuple[Array, Array], z0: Array) -> tuple[Array, Array]:
    """``(loss, z)`` of an FNO-DEQ on ``data = (inputs, targets)`` from the warm start ``z0``."""
    pred, z = model(data[0], z0)
    return training_loss(pred, data[1]), z


def explicit_loss(model: Any, data: tuple[Array, Array]) -> Array:
    """The loss of an explicit FNO on ``data = (inputs, targets)``."""
    return training_loss(model(data[0]), data[1])


def mean_error(pred: Array, target: Array) -> float:
    """The mean relative L2 error of a batch, as a float."""
    xp = array_namespace(pred, target)
    return float(xp.mean(relative_l2(pred, target)))


def solution(output: Array | tuple[Array, Array]) -> Array:
    """The prediction of a model's output: ``u`` of an FNO-DEQ's ``(u, z)``, or the output itself."""
    return output[0] if isinstance(output, tuple) else output
