"""Error messages and warnings shared by the backends, so both say the same thing about the same mistake."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from deq_core.solution import Result

PER_SAMPLE_HINT = (
    " (the cell was called on the samples that have not converged yet, with the matching rows of x: "
    "per-sample data must come through x, not through a closure or a module attribute)"
)

MAX_ITER_LIMIT = 2**31 - 1  # iteration counters are int32 in JAX
_LIBRARIES = ("torch", "jax", "jaxlib", "equinox", "contextlib", "functools", "optax")


def not_converged(
    failed: int, batch: int, max_iter: int, reasons: str = "", worst: float | None = None
) -> str:
    """Message for a solve in which ``failed`` of ``batch`` samples did not converge."""
    detail = f": {reasons}" if reasons else ""
    tail = f", largest relative residual {worst:.3g}" if worst is not None else ""
    return (
        f"fixed_point did not converge for {failed} of {batch} samples (max_iter={max_iter}{detail}{tail}); "
        "raise max_iter, loosen tol, damp the solver, or make f contractive"
    )


def reasons(counts: dict[int, int]) -> str:
    """``"2 diverged (...); 1 did not reach ..."`` from a map of result code to number of samples."""
    return "; ".join(f"{n} {Result.describe(code)}" for code, n in sorted(counts.items()) if code and n)


def under_jit(exception: str) -> str:
    """The note added to a convergence error raised inside ``jax.jit``."""
    return (
        f" [raised under jax.jit as {exception}: catch that exception there, or call outside jit to get "
        "deq_core.ConvergenceError; jit can only raise through equinox's runtime errors, whose messages "
        "only equinox.filter_jit shows]"
    )


def warn_at_caller(message: str) -> None:
    """Warn once per line of the user's code that triggered ``message`` (not per step, not in a library)."""
    frame = sys._getframe(1)
    while frame is not None and _in_library(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        return
    registry = frame.f_globals.setdefault("__warningregistry__", {})
    module = frame.f_globals.get("__name__", "<unknown>")
    warnings.warn_explicit(
        message, RuntimeWarning, frame.f_code.co_filename, frame.f_lineno, module, registry
    )


def _in_library(filename: str) -> bool:
    """Whether a frame's file belongs to a framework or to deq-core's engine (its test suite is a caller)."""
    parts = Path(filename).parts
    in_core = "deq_core" in parts and "testing" not in parts
    return filename.startswith("<") or in_core or any(part in _LIBRARIES for part in parts)


def bad_z0(shape: tuple, dtype: object) -> str | None:
    """Why ``z0`` cannot be solved for, or None if it can."""
    if len(shape) < 1 or shape[0] < 1:
        return f"z0 must have a leading batch dimension of size >= 1, got shape {tuple(shape)}"
    if "float" not in str(dtype) and "bfloat" not in str(dtype):
        return f"z0 must have a floating dtype, got {dtype}"
    return None


def bad_output(z_shape: tuple, out: object, array_type: type, type_name: str) -> str | None:
    """Why ``f(z)`` (the object ``out``) cannot be iterated, or None if it can."""
    if not isinstance(out, array_type):
        return f"f(z, args) must return one {type_name} shaped like z, got {type(out).__name__}" + (
            " (return only the new z, not a tuple)" if isinstance(out, tuple | list) else ""
        )
    if tuple(out.shape) != tuple(z_shape):
        return (
            f"f(z, args) must return an array shaped like z: z has shape {tuple(z_shape)}, "
            f"f returned {tuple(out.shape)}"
        )
    if "float" not in str(out.dtype):
        return f"f(z, args) must return a floating array, got dtype {out.dtype}"
    return None


def check_output(z_shape: tuple, out: object, array_type: type, type_name: str) -> None:
    """Raise TypeError (not an array) or ValueError (bad shape or dtype) if ``f(z)`` cannot be iterated."""
    problem = bad_output(z_shape, out, array_type, type_name)
    if problem:
        raise (ValueError if isinstance(out, array_type) else TypeError)(problem)


def bad_batch(z0_shape: tuple, x_shape: tuple) -> str | None:
    """Why a DEQ cannot start from ``z0`` for the input ``x``, or None if it can."""
    if len(x_shape) and len(z0_shape) and x_shape[0] != z0_shape[0]:
        return (
            f"z0 and x must have the same batch size: z0 has shape {tuple(z0_shape)}, "
            f"x has shape {tuple(x_shape)}"
        )
    return None
