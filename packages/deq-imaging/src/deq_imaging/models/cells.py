"""The cells of the imaging DEQs, written once: a data-consistency step followed by a learned denoiser.

``HQS``: ``z <- D((A*A + mu I)^-1 (A*y + mu z), sigma)`` (the operator's exact ``data_prox`` when it has one,
else ``cg_steps`` conjugate-gradient or fixed-step Richardson steps from ``z``); ``PGD``:
``z <- D(z - eta A*(A z - y), sigma)``. ``mu``, ``eta`` and the denoiser's noise level ``sigma`` are
learnable (log-parametrised; ``mu`` and ``eta`` relative to ``||A||^2``).

The math runs on the array namespace of the inputs. A backend turns a cell into a module by combining it
with a base class (:mod:`deq_imaging.models.torch`, :mod:`deq_imaging.models.jax`) that provides
``_begin()`` (prepare the module for attribute assignment) and ``_scalar(value)`` (a trainable float32
scalar parameter); the cell's ``forward`` is its module call.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from deq_imaging.models.family import OperatorFamily, data_step_choice


def conjugate_gradient(op: Any, y: Any, z: Any, mu: Any, steps: int) -> Any:
    """``steps`` CG iterations on ``(A*A + mu I) x = A*y + mu z`` from ``x = z``, per image."""
    xp = array_namespace(z)
    dims = tuple(range(1, z.ndim))
    tiny = xp.finfo(z.dtype).tiny

    def normal(v: Any) -> Any:
        return op.adjoint(op.forward(v)) + mu * v

    def dot(a: Any, b: Any) -> Any:
        return xp.sum(a * b, axis=dims, keepdims=True)

    x = z
    r = op.adjoint(y) + mu * z - normal(x)
    p, rs = r, dot(r, r)
    for _ in range(steps):
        ap = normal(p)
        alpha = rs / xp.clip(dot(p, ap), min=tiny)
        x, r = x + alpha * p, r - alpha * ap
        rs_new = dot(r, r)
        p, rs = r + rs_new / xp.clip(rs, min=tiny) * p, rs_new
    return x


def richardson(op: Any, y: Any, z: Any, mu: Any, norm2: float, steps: int) -> Any:
    """``steps`` fixed-step gradient iterations on ``(A*A + mu I) x = A*y + mu z`` from ``x = z`` (step
    ``1 / (||A||^2 + mu)``): a linear, nonexpansive map of ``z``, unlike CG, whose step size depends on it."""
    eta = 1.0 / (norm2 + mu)
    b = op.adjoint(y) + mu * z
    x = z
    for _ in range(steps):
        x = x - eta * (op.adjoint(op.forward(x)) + mu * x - b)
    return x


class Cell:
    """What HQS and PGD cells share: the task's operators, the denoiser, its learnable noise level."""

    family: OperatorFamily
    start: str

    def _setup(self, family: OperatorFamily, denoiser: Any, sigma0: float, start: str) -> None:
        self._begin()  # type: ignore[attr-defined]
        self.family, self.denoiser, self.start = family, denoiser, start
        self.log_sigma = self._scalar(math.log(sigma0))  # type: ignore[attr-defined]

    def init(self, y: Any) -> Any:
        """The starting image of the iteration for measurements ``y`` (``direct`` or ``zero``)."""
        return self.family.init(y, self.start)

    def sigma(self) -> Any:
        """The denoiser's learned noise level."""
        return array_namespace(self.log_sigma).exp(self.log_sigma)

    def data_step(self, z: Any, y: Any) -> Any:
        """The data-consistency step of the cell."""
        raise NotImplementedError

    def forward(self, z: Any, y: Any) -> Any:
        """One iteration: the data step, then the denoiser."""
        return self.denoiser(self.data_step(z, y), self.sigma())


class HQS(Cell):
    """Half-quadratic splitting: ``z <- D(prox_data(z; mu), sigma)`` with learnable ``mu`` and ``sigma``."""

    cg_steps: int
    inner: str

    def __init__(
        self,
        family: OperatorFamily,
        denoiser: Any,
        mu0: float,
        sigma0: float,
        cg_steps: int = 0,
        inner: str = "cg",
        start: str = "direct",
    ) -> None:
        """``cg_steps`` > 0 replaces the closed-form proximal step by that many ``inner`` steps (``cg`` or
        ``richardson``)."""
        self._setup(family, denoiser, sigma0, start)
        self.log_mu = self._scalar(math.log(mu0))  # type: ignore[attr-defined]
        self.cg_steps, self.inner = cg_steps, inner

    def data_step(self, z: Any, y: Any) -> Any:
        """``(A*A + mu I)^-1 (A*y + mu z)`` (exact, or by CG or Richardson steps)."""
        xp = array_namespace(z)
        op = self.family.get(y.shape)
        norm2 = self.family.norm2(y.shape)
        mu = xp.astype(xp.exp(self.log_mu), z.dtype) * norm2
        if self.cg_steps == 0 and hasattr(op, "data_prox"):
            return op.data_prox(y, z, xp.broadcast_to(xp.reshape(mu, (1,)), (z.shape[0],)))
        if self.inner == "richardson":
            return richardson(op, y, z, mu, norm2, max(self.cg_steps, 1))
        return conjugate_gradient(op, y, z, mu, max(self.cg_steps, 1))


class PGD(Cell):
    """Proximal gradient: ``z <- D(z - eta A*(A z - y), sigma)`` with learnable ``eta`` and ``sigma``."""

    def __init__(
        self, family: OperatorFamily, denoiser: Any, eta0: float, sigma0: float, start: str = "direct"
    ) -> None:
        """``eta0`` is the initial step in units of ``1 / ||A||^2``."""
        self._setup(family, denoiser, sigma0, start)
        self.log_eta = self._scalar(math.log(eta0))  # type: ignore[attr-defined]

    def data_step(self, z: Any, y: Any) -> Any:
        """One gradient step on ``||A z - y||^2 / 2``."""
        xp = array_namespace(z)
        op = self.family.get(y.shape)
        eta = xp.astype(xp.exp(self.log_eta), z.dtype) / self.family.norm2(y.shape)
        return z - eta * op.adjoint(op.forward(z) - y)


def build(spec: Any, cfg: Any, denoiser: Any, hqs: type, pgd: type) -> Any:
    """The cell ``cfg`` (an :class:`~deq_imaging.models.config.ImagingConfig`) describes for ``spec``, as an
    instance of a backend's ``hqs`` or ``pgd`` class around ``denoiser``."""
    family = OperatorFamily(spec)
    if cfg.model == "pgd":
        return pgd(family, denoiser, cfg.eta0, cfg.sigma0, cfg.start)
    steps, inner = data_step_choice(spec.kind, cfg.data_step, cfg.cg_steps)
    return hqs(family, denoiser, cfg.mu0, cfg.sigma0, steps, inner, cfg.start)
