"""``OperatorFamily``: a task's forward operator for every image size, built lazily; backend-free.

The operators (:mod:`deq_imaging.operators.linear`) run on whatever arrays they are given, so one family
serves every backend; ``||A||^2`` comes from the operator's ``norm()`` (closed form, or a float64 numpy
power iteration), which also works while a JAX function is being traced.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace, device

from deq_core.errors import ConfigError
from deq_imaging.operators.linear import CircularBlur, Identity, Radon


def data_step_choice(kind: str, data_step: str, cg_steps: int) -> tuple[int, str]:
    """``(inner steps, inner method)`` of the HQS data step for an operator ``kind``: ``(0, "cg")`` means
    the closed-form proximal step (identity and blur, unless ``data_step`` asks for ``cg``/``richardson``);
    ``data_step="prox"`` on an operator without one raises naming it."""
    closed_form = kind in ("identity", "blur") and data_step in ("auto", "prox")
    if data_step == "prox" and not closed_form:
        raise ConfigError(
            f"data_step='prox' needs a closed-form proximal step; {kind!r} has none (use cg or richardson)"
        )
    inner = "richardson" if data_step == "richardson" else "cg"
    return (0 if closed_form else cg_steps), inner


class OperatorFamily:
    """The forward operator of an :class:`~deq_imaging.datasets.problem.OperatorSpec` for every image size."""

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
                op = Identity(shape)
            elif self.spec.kind == "blur":
                op = CircularBlur(self.spec.kernel, shape)
            else:
                op = Radon(self.spec.image_size, self.spec.theta)
            self._ops[key] = op
            self._norms[key] = float(op.norm()) ** 2
        return self._ops[key]

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
        """Zero images (N, C, *image_shape) in ``y``'s namespace, dtype and device."""
        xp = array_namespace(y)
        return xp.zeros((*y.shape[:-2], *image_shape), dtype=y.dtype, device=device(y))
