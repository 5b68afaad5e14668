"""Validated, backend-agnostic configuration: forward solvers, backward modes and the stopping rule.

Every config is a frozen dataclass checked on construction, so a typo or an impossible value fails
where it is written, with a message that names the field. Strings such as ``"anderson"`` are accepted
wherever a config is, and :func:`solver_config` / :func:`backward_config` / :func:`stop_config`
turn them into configs (or raise :class:`~deq_core.errors.ConfigError` listing the valid names).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from deq_core.errors import ConfigError

__all__ = [
    "Picard",
    "Anderson",
    "Broyden",
    "GMRES",
    "Implicit",
    "JFB",
    "Phantom",
    "Unroll",
    "Stop",
    "SolveOptions",
    "solver_config",
    "adjoint_solver_config",
    "backward_config",
    "stop_config",
    "solve_options",
    "from_dict",
]


def _positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}")


def _number(owner: str, name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{owner}.{name} must be a number in {bracket}{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class Picard:
    """Damped fixed-point iteration ``z <- (1 - damping) z + damping f(z)``."""

    damping: float = 1.0

    def __post_init__(self) -> None:
        _number("Picard", "damping", self.damping, 0.0, 1.0, low_open=True)


@dataclass(frozen=True)
class Anderson:
    """Anderson acceleration (type II) over the last ``memory`` iterates, with a relative ``ridge``."""

    memory: int = 5
    ridge: float = 1e-4
    damping: float = 1.0

    def __post_init__(self) -> None:
        _positive_int("Anderson", "memory", self.memory)
        _number("Anderson", "ridge", self.ridge, 0.0, 1.0)
        _number("Anderson", "damping", self.damping, 0.0, 1.0, low_open=True)


@dataclass(frozen=True)
class Broyden:
    """Limited-memory ("good") Broyden quasi-Newton on ``g(z) = f(z) - z``, keeping ``memory`` updates."""

    memory: int = 30

    def __post_init__(self) -> None:
        _positive_int("Broyden", "memory", self.memory)


@dataclass(frozen=True)
class GMRES:
    """Restarted GMRES for the linear adjoint system ``(I - J^T) y = g``; only valid as an adjoint solver."""

    restart: int = 20

    def __post_init__(self) -> None:
        _positive_int("GMRES", "restart", self.restart)


ForwardSolver = Picard | Anderson | Broyden
AdjointSolver = Picard | Anderson | Broyden | GMRES

_SOLVERS: dict[str, type] = {"picard": Picard, "anderson": Anderson, "broyden": Broyden}
_ADJOINT_SOLVERS: dict[str, type] = {**_SOLVERS, "gmres": GMRES}


@dataclass(frozen=True)
class Stop:
    """Stopping rule: a sample stops when its ``kind`` residual (``"rel"`` or ``"abs"``) is <= ``tol``.

    The absolute residual is ``||f(z) - z||``, the relative one ``||f(z) - z|| / ||f(z)||``; ``norm`` is
    ``2`` (Euclidean over all non-batch entries) or ``"inf"`` (max-abs).
    """

    tol: float = 1e-5
    kind: Literal["rel", "abs"] = "rel"
    norm: Literal[2, "inf"] = 2

    def __post_init__(self) -> None:
        _number("Stop", "tol", self.tol, 0.0, math.inf)
        if self.kind not in ("rel", "abs"):
            raise ConfigError(f"Stop.kind must be 'rel' or 'abs', got {self.kind!r}")
        if self.norm not in (2, "inf"):
            raise ConfigError(f"Stop.norm must be 2 or 'inf', got {self.norm!r}")


@dataclass(frozen=True)
class Implicit:
    """Implicit differentiation: solve the adjoint ``y = g + J^T y`` matrix-free from VJPs.

    ``tol`` and ``max_iter`` default to the forward solve's; memory is O(1) in forward iterations.
    """

    solver: AdjointSolver | str = field(default_factory=Anderson)
    tol: float | None = None
    max_iter: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "solver", adjoint_solver_config(self.solver))
        if self.tol is not None:
            _number("Implicit", "tol", self.tol, 0.0, math.inf)
        if self.max_iter is not None:
            _positive_int("Implicit", "max_iter", self.max_iter)


@dataclass(frozen=True)
class JFB:
    """Jacobian-free backprop: the gradient of one application of ``f`` at the (detached) fixed point."""


@dataclass(frozen=True)
class Phantom:
    """Phantom gradient: backprop through ``steps`` damped steps ``z <- z + tau (f(z) - z)`` from ``z*``."""

    steps: int = 5
    tau: float = 0.5

    def __post_init__(self) -> None:
        _positive_int("Phantom", "steps", self.steps)
        _number("Phantom", "tau", self.tau, 0.0, 1.0, low_open=True)


@dataclass(frozen=True)
class Unroll:
    """Exact backprop through every forward iteration (memory grows with the iteration count)."""


Backward = Implicit | JFB | Phantom | Unroll
_BACKWARDS: dict[str, type] = {"implicit": Implicit, "jfb": JFB, "phantom": Phantom, "unroll": Unroll}


def _lookup(kind: str, table: dict[str, type], value: Any) -> Any:
    if isinstance(value, tuple(table.values())):
        return value
    if isinstance(value, str):
        try:
            return table[value.lower()]()
        except KeyError:
            names = ", ".join(repr(n) for n in table)
            raise ConfigError(f"{kind}: unknown name {value!r}; choose one of {names}") from None
    names = ", ".join(t.__name__ for t in table.values())
    raise ConfigError(f"{kind} must be a name or one of {names}, got {type(value).__name__}")


def solver_config(value: ForwardSolver | str) -> ForwardSolver:
    """The forward-solver config for ``value``: a config or ``"picard"``, ``"anderson"``, ``"broyden"``."""
    return _lookup("solver", _SOLVERS, value)


def adjoint_solver_config(value: AdjointSolver | str) -> AdjointSolver:
    """Return the adjoint-solver config for ``value`` (a forward solver name, ``"gmres"``, or a config)."""
    return _lookup("Implicit.solver", _ADJOINT_SOLVERS, value)


def backward_config(value: Backward | str) -> Backward:
    """The backward config for ``value``: a config or "implicit", "jfb", "phantom", "unroll"."""
    return _lookup("backward", _BACKWARDS, value)


def stop_config(stop: Stop | str, tol: float | None = None) -> Stop:
    """The stopping rule: ``stop`` is a :class:`Stop`, or a kind (``"rel"``/``"abs"``) used with ``tol``."""
    if isinstance(stop, Stop):
        if tol is not None and tol != stop.tol:
            raise ConfigError(
                f"tol={tol!r} conflicts with stop=Stop(tol={stop.tol!r}); give the tolerance once"
            )
        return stop
    if not isinstance(stop, str):
        raise ConfigError(f"stop must be 'rel', 'abs' or a Stop, got {type(stop).__name__}")
    return Stop(tol=1e-5 if tol is None else tol, kind=stop)


def from_dict(kind: type, values: dict[str, Any]) -> Any:
    """Build config ``kind`` from a mapping, rejecting unknown keys by name (nothing is silently ignored)."""
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{kind.__name__}: unknown field(s) {unknown}; valid fields are {sorted(known)}")
    return kind(**values)


@dataclass(frozen=True)
class SolveOptions:
    """Everything ``fixed_point`` needs besides ``f``, ``z0`` and ``args``, validated together."""

    solver: ForwardSolver
    backward: Backward
    stop: Stop
    max_iter: int
    throw: bool = False

    def __post_init__(self) -> None:
        _positive_int("fixed_point", "max_iter", self.max_iter)
        if not isinstance(self.throw, bool):
            raise ConfigError(f"fixed_point.throw must be a bool, got {self.throw!r}")

    @property
    def adjoint_stop(self) -> Stop:
        """Stopping rule of the implicit backward's adjoint solve (defaults to the forward rule)."""
        tol = self.backward.tol if isinstance(self.backward, Implicit) else None
        return dataclasses.replace(self.stop, tol=self.stop.tol if tol is None else tol)

    @property
    def adjoint_max_iter(self) -> int:
        """Iteration budget of the implicit backward's adjoint solve (defaults to the forward budget)."""
        budget = self.backward.max_iter if isinstance(self.backward, Implicit) else None
        return self.max_iter if budget is None else budget


def solve_options(
    solver: ForwardSolver | str = "anderson",
    backward: Backward | str = "implicit",
    tol: float | None = 1e-5,
    max_iter: int = 50,
    stop: Stop | str = "rel",
    throw: bool = False,
    **unknown: Any,
) -> SolveOptions:
    """Validate and bundle the keyword options of ``fixed_point`` / ``DEQ``; unknown keys are an error."""
    if unknown:
        valid = ["solver", "backward", "tol", "max_iter", "stop", "throw"]
        raise ConfigError(f"unknown solve option(s) {sorted(unknown)}; valid options are {valid}")
    if isinstance(stop, Stop) and tol == 1e-5:
        tol = None  # the default tol defers to an explicit Stop
    return SolveOptions(
        solver_config(solver), backward_config(backward), stop_config(stop, tol), max_iter, throw
    )
