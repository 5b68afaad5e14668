"""Error messages shared by the backends, so both say the same thing about the same mistake."""

from __future__ import annotations

PER_SAMPLE_HINT = (
    " (the cell was called on the samples that have not converged yet, with the matching rows of x: "
    "per-sample data must come through x, not through a closure or a module attribute)"
)


def not_converged(failed: int, batch: int, max_iter: int, worst: float | None = None) -> str:
    """Message for a solve in which ``failed`` of ``batch`` samples did not converge."""
    tail = f" (largest residual {worst:.3g})" if worst is not None else ""
    return (
        f"fixed_point did not converge for {failed} of {batch} samples within max_iter={max_iter}{tail}; "
        "raise max_iter, loosen tol, damp the solver, or make f contractive"
    )


def bad_z0(shape: tuple, dtype: object) -> str | None:
    """Why ``z0`` cannot be solved for, or None if it can."""
    if len(shape) < 1 or shape[0] < 1:
        return f"z0 must have a leading batch dimension of size >= 1, got shape {tuple(shape)}"
    if "float" not in str(dtype) and "bfloat" not in str(dtype):
        return f"z0 must have a floating dtype, got {dtype}"
    return None


def bad_output(z_shape: tuple, out_shape: tuple, out_dtype: object) -> str | None:
    """Why ``f(z)`` cannot be iterated, or None if it can."""
    if tuple(out_shape) != tuple(z_shape):
        return (
            f"f(z, args) must return an array shaped like z: z has shape {tuple(z_shape)}, "
            f"f returned {tuple(out_shape)}"
        )
    if "float" not in str(out_dtype):
        return f"f(z, args) must return a floating array, got dtype {out_dtype}"
    return None
