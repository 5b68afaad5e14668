"""Array helpers of the operators, written once over the input's array namespace (numpy, torch or JAX).

``xp = array_namespace(x)`` gives the namespace; constants built in numpy (transfer functions, masks,
filters) enter it through :func:`constant` in the input's precision and on its device, so float32 stays
float32 and float64 stays float64 in every backend. :func:`power_norm` is the seeded float64 power iteration
(numpy) that gives the operators without a closed-form norm their ``norm()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_array_api_obj

from deq_imaging.operators.shapes import check_batch_shape, check_float_dtype

AXES = (-2, -1)


def namespace(x: Any, what: str) -> Any:
    """The array namespace of ``x``, or a ValueError naming ``what`` when ``x`` is not an array."""
    try:
        return array_namespace(x)
    except TypeError:
        raise ValueError(f"{what}: expected a numpy, torch or JAX array, got {type(x).__name__}") from None


def check(x: Any, hw: tuple[int, int], what: str) -> Any:
    """Validate a float (N, C, H, W) array with (H, W) = ``hw`` and return it."""
    namespace(x, what)
    check_batch_shape(x.shape, hw, what)
    check_float_dtype(str(x.dtype), what)
    return x


def to_numpy(a: Any) -> np.ndarray:
    """A numpy copy of ``a``: a numpy, torch (on any device, with or without grad) or JAX array."""
    if hasattr(a, "detach"):
        a = a.detach().cpu()
    return np.asarray(a)


def constant(value: np.ndarray, like: Any, complex_: bool = False) -> Any:
    """The numpy ``value`` as an array of ``like``'s namespace and device, in ``like``'s float dtype (or the
    complex dtype of that precision with ``complex_``)."""
    xp = array_namespace(like)
    dtype = like.dtype
    if complex_:
        dtype = xp.complex64 if like.dtype == xp.float32 else xp.complex128
    return xp.asarray(value, dtype=dtype, device=device(like))


def per_image(value: Any, like: Any, what: str) -> Any:
    """A number as a float, or an (N,) array reshaped to (N, 1, 1, 1) in ``like``'s namespace and dtype."""
    if isinstance(value, int | float):
        return float(value)
    xp = array_namespace(like)
    try:
        same = array_namespace(value) is xp
    except TypeError:
        same = False
    v = value if same else xp.asarray(to_numpy(value), device=device(like))
    v = xp.astype(v, like.dtype)
    if v.ndim == 0:
        return v
    if tuple(v.shape) != (like.shape[0],):
        raise ValueError(f"{what}: expected a scalar or shape ({like.shape[0]},), got {tuple(v.shape)}")
    return xp.reshape(v, (-1, 1, 1, 1))


def prox_weight(mu: Any, like: Any, what: str) -> Any:
    """:func:`per_image` of a proximal weight ``mu``, which must be finite and > 0.

    ``(A*A + mu I)^-1`` exists for every operator only when ``mu > 0`` (``mu = 0`` leaves the unobserved part
    of ``x`` undetermined: masked pixels, zeros of a blur's transfer function). Python numbers, lists and
    numpy arrays are checked here; torch and JAX arrays are taken as given, since reading their values would
    wait for the device in every iteration (and under ``jax.jit`` they have none): a framework caller keeps
    its weights positive itself, as the HQS cell does with ``mu = exp(log_mu)``.
    """
    if not is_array_api_obj(mu) or isinstance(mu, np.ndarray | np.generic):
        v = np.asarray(mu)
        if v.dtype.kind not in "iuf" or not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(
                f"{what}: mu must be finite and > 0 (a number or one per image, shape (N,)), got {mu!r}"
            )
    return per_image(mu, like, f"{what} mu")


def zero_pad(x: Any, top: int, bottom: int, left: int, right: int) -> Any:
    """``x`` (N, C, H, W) with zero rows above and below and zero columns left and right."""
    if not (top or bottom or left or right):
        return x
    xp = array_namespace(x)
    n, c, h, w = x.shape

    def zeros(rows: int, cols: int) -> Any:
        return xp.zeros((n, c, rows, cols), dtype=x.dtype, device=device(x))

    x = xp.concat([zeros(top, w), x, zeros(bottom, w)], axis=2)
    return xp.concat([zeros(h + top + bottom, left), x, zeros(h + top + bottom, right)], axis=3)


def power_norm(op: Any, in_shape: tuple[int, int], n_iter: int = 50, seed: int = 0) -> float:
    """Operator-norm estimate ``||A||_2`` by power iteration on ``A* A`` (numpy, float64, seeded)."""
    x = np.random.default_rng(seed).standard_normal((1, 1, *in_shape))
    x /= np.linalg.norm(x)
    val = 0.0
    for _ in range(n_iter):
        z = op.adjoint(op.forward(x))
        val = float(np.linalg.norm(z))
        if val == 0.0:
            return 0.0
        x = z / val
    return float(np.sqrt(val))
