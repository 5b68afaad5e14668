"""``OperatorFamily``: a task's forward operator for every image size, built lazily; backend-free.

Each backend's model module subclasses it and names its operator module in ``operators``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def data_step_choice(kind: str, data_step: str, cg_steps: int) -> tuple[int, str]:
    """``(inner steps, inner method)`` of the HQS data step for an operator ``kind``: ``(0, "cg")`` means
    the closed-form proximal step (identity and blur, unless ``data_step`` asks for ``cg``/``richardson``);
    ``data_step="prox"`` on an operator without one raises naming it."""
    closed_form = kind in ("identity", "blur") and data_step in ("auto", "prox")
    if data_step == "prox" and not closed_form:
        raise ValueError(
            f"data_step='prox' needs a closed-form proximal step; {kind!r} has none (use cg or richardson)"
        )
    inner = "richardson" if data_step == "richardson" else "cg"
    return (0 if closed_form else cg_steps), inner


class OperatorFamily:
    """The forward operator of an :class:`~deq_imaging.datasets.problem.OperatorSpec` for every image size."""

    operators: ModuleType  # deq_imaging.operators.torch or deq_imaging.operators.jax

    def __init__(self, spec: Any) -> None:
        """Operators are built lazily per measurement shape and cached."""
        self.spec = spec
        self._ops: dict[tuple[int, int], Any] = {}
        self._norms: dict[tuple[int, int], float] = {}

    def get(self, measurement_shape: tuple[int, ...]) -> Any:
        """The operator whose measurements have shape (..., h, w) = ``measurement_shape``."""
        key = tuple(int(s) for s in measurement_shape[-2:])
        if key not in self._ops:
            shape = self.spec.image_shape(key)
            if self.spec.kind == "identity":
                op = self.operators.Identity(shape)
            elif self.spec.kind == "blur":
                op = self.operators.CircularBlur(self.spec.kernel, shape)
            else:
                op = self.operators.Radon(self.spec.image_size, self.spec.theta)
            self._ops[key] = op
            self._norms[key] = self._norm2(op, shape)
        return self._ops[key]

    def _norm2(self, op: Any, shape: tuple[int, int]) -> float:
        """``||A||^2`` of a freshly built operator."""
        return float(op.norm()) ** 2

    def norm2(self, measurement_shape: tuple[int, ...]) -> float:
        """``||A||^2`` of the operator for ``measurement_shape``."""
        self.get(measurement_shape)
        return self._norms[tuple(int(s) for s in measurement_shape[-2:])]

    def direct(self, y: Any) -> Any:
        """The direct reconstruction: FBP of the sinogram for CT, the measurement itself otherwise."""
        op = self.get(y.shape)
        return op.fbp(y) if self.spec.kind == "radon" else y

    def init(self, y: Any, start: str = "direct") -> Any:
        """The iteration's starting image: the :meth:`direct` reconstruction, or zeros (``start="zero"``)."""
        if start == "zero":
            return self.zeros(y, self.get(y.shape).image_shape)
        if start != "direct":
            raise ValueError(f"start must be 'direct' or 'zero', got {start!r}")
        return self.direct(y)

    def zeros(self, y: Any, image_shape: tuple[int, int]) -> Any:
        """Zero images (N, C, *image_shape) in ``y``'s dtype and device (backend-specific)."""
        raise NotImplementedError
