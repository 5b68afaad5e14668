"""Validated, backend-agnostic configuration: forward solvers, backward modes and the stopping rule.

Every config is a frozen dataclass checked on construction, so a typo or an impossible value fails
where it is written, with a message that names the field. Strings such as ``"anderson"`` are accepted
wherever a config is, and :func:`solver_config` / :func:`backward_config` / :func:`stop_config`
turn them into configs (or raise :class:`~deq_core.errors.ConfigError` listing the valid names).
A plain mapping (a JSON config) becomes a :class:`SolveOptions` through :func:`solve_options_from_dict`,
and :func:`solve_options_to_dict` writes one back.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from deq_core.errors import ConfigError
from deq_core.messages import MAX_ITER_LIMIT

__all__ = [
    "Picard",
    "Anderson",
    "Broyden",
    "GMRES",
    "Implicit",
    "JFB",
    "Phantom",
    "Unroll",
    "Reversible",
    "Stop",
    "SolveOptions",
    "solver_config",
    "adjoint_solver_config",
    "backward_config",
    "stop_config",
    "solve_options",
    "solve_options_from_dict",
    "solve_options_to_dict",
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
    """Anderson acceleration (type II) over the last ``memory`` iterates, with a relative ``ridge`` > 0.

    The ridge keeps the mixing problem solvable once the residual history becomes linearly dependent,
    as it does on every contraction near its fixed point; ``ridge=0`` would make it singular.
    """

    memory: int = 5
    ridge: float = 1e-4
    damping: float = 1.0

    def __post_init__(self) -> None:
        _positive_int("Anderson", "memory", self.memory)
        _number("Anderson", "ridge", self.ridge, 0.0, 1.0, low_open=True)
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
    """Stopping rule: a sample converges when ``||f(z) - z|| <= atol + rtol * ||f(z)||``.

    The relative part only counts for an iterate whose residual is the lowest of the sample so far, so an
    iteration whose residual never shrinks (``f(z) = z + c``, whose norm grows without bound) cannot pass
    by growing. ``norm`` is ``2`` (Euclidean over all non-batch entries) or ``"inf"`` (max-abs).

    A sample stops as *diverged* once its residual has exceeded ``divergence`` times its lowest residual
    for ``patience`` iterations in a row (``divergence=None`` turns the check off), and as *non-finite*
    as soon as a residual or ``||f(z)||`` is NaN or infinite.
    """

    rtol: float = 1e-5
    atol: float = 0.0
    norm: Literal[2, "inf"] = 2
    divergence: float | None = 1e4
    patience: int = 5

    def __post_init__(self) -> None:
        _number("Stop", "rtol", self.rtol, 0.0, math.inf)
        _number("Stop", "atol", self.atol, 0.0, math.inf)
        if self.norm not in (2, "inf"):
            raise ConfigError(f"Stop.norm must be 2 or 'inf', got {self.norm!r}")
        if self.divergence is not None:
            _number("Stop", "divergence", self.divergence, 1.0, math.inf, low_open=True)
        _positive_int("Stop", "patience", self.patience)

    @property
    def kind(self) -> str:
        """``"abs"`` for a purely absolute rule (``rtol == 0``), else ``"rel"``."""
        return "abs" if self.rtol == 0 else "rel"

    def with_tol(self, tol: float) -> Stop:
        """The same rule with ``tol`` as its relative tolerance (its absolute one for an ``"abs"`` rule)."""
        field_name = "atol" if self.kind == "abs" else "rtol"
        return dataclasses.replace(self, **{field_name: tol})


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


@dataclass(frozen=True)
class Reversible:
    """Reversible DEQ (McCallum, Arora, Foster 2025): exact gradient of the computed iterate, O(1) memory.

    The forward solve is the coupled relaxed iteration ``y <- (1 - beta) y + beta f(z)``,
    ``z <- (1 - beta) z + beta f(y)`` from ``y = z = z0`` (it replaces the forward ``solver``); it is
    algebraically invertible, so the backward pass reconstructs the iterates in reverse instead of storing
    them. ``beta`` lies in ``(0, 2)`` and must not be 1 (the step would not be invertible).
    """

    beta: float = 0.5

    def __post_init__(self) -> None:
        _number("Reversible", "beta", self.beta, 0.0, 2.0, low_open=True)
        if self.beta == 2.0 or abs(self.beta - 1.0) < 1e-3:
            raise ConfigError(f"Reversible.beta must lie in (0, 2) away from 1, got {self.beta!r}")


Backward = Implicit | JFB | Phantom | Unroll | Reversible
_BACKWARDS: dict[str, type] = {
    "implicit": Implicit,
    "jfb": JFB,
    "phantom": Phantom,
    "unroll": Unroll,
    "reversible": Reversible,
}


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
    """The backward config for ``value``: a config or "implicit", "jfb", "phantom", "unroll", "reversible"."""
    return _lookup("backward", _BACKWARDS, value)


def stop_config(stop: Stop | str, tol: float | None = None) -> Stop:
    """The stopping rule: ``stop`` is a :class:`Stop`, or a kind used with ``tol`` (default ``1e-5``).

    ``"rel"`` is ``Stop(rtol=tol)`` and ``"abs"`` is ``Stop(rtol=0, atol=tol)``. A ``tol`` next to a
    :class:`Stop` must be its own tolerance, or it is an error (the tolerance is given once).
    """
    if isinstance(stop, Stop):
        own = stop.atol if stop.kind == "abs" else stop.rtol
        if tol is not None and tol != own:
            raise ConfigError(f"tol={tol!r} conflicts with stop={stop!r}; give the tolerance once")
        return stop
    if not isinstance(stop, str):
        raise ConfigError(f"stop must be 'rel', 'abs' or a Stop, got {type(stop).__name__}")
    tol = 1e-5 if tol is None else tol
    if stop == "rel":
        return Stop(rtol=tol)
    if stop == "abs":
        _number("Stop", "tol", tol, 0.0, math.inf)
        return Stop(rtol=0.0, atol=tol)
    raise ConfigError(f"stop must be 'rel', 'abs' or a Stop, got {stop!r}")


def from_dict(kind: type, values: Mapping[str, Any]) -> Any:
    """Build config ``kind`` from a mapping, naming any unknown or missing key (nothing is ignored)."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{kind.__name__} needs a mapping of its fields, got {type(values).__name__}")
    fields = dataclasses.fields(kind)
    known = {f.name for f in fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{kind.__name__}: unknown field(s) {unknown}; valid fields are {sorted(known)}")
    unset = dataclasses.MISSING
    required = {f.name for f in fields if f.default is unset and f.default_factory is unset}
    missing = sorted(required - set(values))
    if missing:
        raise ConfigError(f"{kind.__name__}: missing field(s) {missing}")
    return kind(**values)


@dataclass(frozen=True)
class SolveOptions:
    """Everything ``fixed_point`` needs besides ``f``, ``z0`` and ``args``, validated together."""

    solver: ForwardSolver
    backward: Backward
    stop: Stop
    max_iter: int
    throw: bool = False
    trace: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "solver", solver_config(self.solver))
        object.__setattr__(self, "backward", backward_config(self.backward))
        object.__setattr__(self, "stop", stop_config(self.stop))
        _positive_int("fixed_point", "max_iter", self.max_iter)
        if self.max_iter > MAX_ITER_LIMIT:
            raise ConfigError(f"fixed_point.max_iter must be <= {MAX_ITER_LIMIT}, got {self.max_iter}")
        for name in ("throw", "trace"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"fixed_point.{name} must be a bool, got {getattr(self, name)!r}")
        if isinstance(self.backward, Reversible) and self.trace:
            raise ConfigError(
                "fixed_point.trace is not recorded by the reversible backward (its coupled iteration measures"
                " every other evaluation); use trace=False, or another backward mode"
            )
        if isinstance(self.backward, Reversible) and self.max_iter < 3:
            raise ConfigError(
                f"fixed_point.max_iter must be >= 3 with the reversible backward (one coupled step costs two "
                f"evaluations of f and the result's residual a third), got {self.max_iter}"
            )

    @property
    def adjoint_stop(self) -> Stop:
        """Stopping rule of the implicit backward's adjoint solve (defaults to the forward rule)."""
        tol = self.backward.tol if isinstance(self.backward, Implicit) else None
        return self.stop if tol is None else self.stop.with_tol(tol)

    @property
    def adjoint_max_iter(self) -> int:
        """Iteration budget of the implicit backward's adjoint solve (defaults to the forward budget)."""
        budget = self.backward.max_iter if isinstance(self.backward, Implicit) else None
        return self.max_iter if budget is None else budget


def solve_options(
    solver: ForwardSolver | str = "anderson",
    backward: Backward | str = "implicit",
    tol: float | None = None,
    max_iter: int = 50,
    stop: Stop | str = "rel",
    throw: bool = False,
    trace: bool = False,
    **unknown: Any,
) -> SolveOptions:
    """Validate and bundle the keyword options of ``fixed_point`` / ``DEQ``; unknown keys are an error."""
    if unknown:
        valid = ["solver", "backward", "tol", "max_iter", "stop", "throw", "trace"]
        raise ConfigError(f"unknown solve option(s) {sorted(unknown)}; valid options are {valid}")
    return SolveOptions(
        solver_config(solver), backward_config(backward), stop_config(stop, tol), max_iter, throw, trace
    )


def deq_solve_options(options: SolveOptions | None, keywords: dict[str, Any]) -> SolveOptions:
    """A ``DEQ``'s options: ``options`` (a :class:`SolveOptions`) as given, or the ``keywords`` validated."""
    if options is None:
        return solve_options(**keywords)
    if not isinstance(options, SolveOptions):
        raise ConfigError(f"DEQ options must be a SolveOptions, got {type(options).__name__}")
    if keywords:
        raise ConfigError(f"DEQ: give options= or keyword options, not both (also got {sorted(keywords)})")
    return options


_SOLVE_KEYS = ("solver", "backward", "tol", "max_iter", "stop", "throw", "trace")


def _named_config(owner: str, table: dict[str, type], value: Any) -> Any:
    """A config from a name, an existing config, or a mapping ``{"name": ..., <its fields>}``."""
    if not isinstance(value, Mapping):
        return value  # a name or a config: solve_options checks it
    fields = dict(value)
    name = fields.pop("name", None)
    if not isinstance(name, str) or name.lower() not in table:
        names = ", ".join(repr(n) for n in table)
        raise ConfigError(f"{owner}.name must be one of {names}, got {name!r}")
    kind = table[name.lower()]
    if kind is Implicit and "solver" in fields:
        fields["solver"] = _named_config(f"{owner}.solver", _ADJOINT_SOLVERS, fields["solver"])
    try:
        return from_dict(kind, fields)
    except ConfigError as error:
        raise ConfigError(f"{owner}: {error}") from None


def solve_options_from_dict(values: Mapping[str, Any]) -> SolveOptions:
    """A :class:`SolveOptions` from a plain mapping, e.g. a JSON config; unknown keys are a ConfigError.

    The keys are those of :func:`solve_options`. ``solver`` and ``backward`` are a name (``"anderson"``) or a
    mapping of the name and that config's fields (``{"name": "anderson", "memory": 8}``; an implicit
    backward's ``solver`` likewise); ``stop`` is ``"rel"``, ``"abs"`` or a mapping of :class:`Stop`'s fields.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"solve options must be a mapping, got {type(values).__name__}")
    unknown = sorted(set(values) - set(_SOLVE_KEYS))
    if unknown:
        raise ConfigError(f"unknown solve option(s) {unknown}; valid options are {list(_SOLVE_KEYS)}")
    options = dict(values)
    if "solver" in options:
        options["solver"] = _named_config("solver", _SOLVERS, options["solver"])
    if "backward" in options:
        options["backward"] = _named_config("backward", _BACKWARDS, options["backward"])
    if isinstance(options.get("stop"), Mapping):
        try:
            options["stop"] = from_dict(Stop, options["stop"])
        except ConfigError as error:
            raise ConfigError(f"stop: {error}") from None
    return solve_options(**options)


def solve_options_to_dict(options: SolveOptions) -> dict[str, Any]:
    """The plain mapping of ``options`` that :func:`solve_options_from_dict` reads back (JSON-ready)."""

    def named(table: dict[str, type], config: Any) -> dict[str, Any]:
        name = next(key for key, kind in table.items() if isinstance(config, kind))
        fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        if isinstance(config, Implicit):
            fields["solver"] = named(_ADJOINT_SOLVERS, config.solver)
        return {"name": name, **fields}

    return {
        "solver": named(_SOLVERS, options.solver),
        "backward": named(_BACKWARDS, options.backward),
        "stop": dataclasses.asdict(options.stop),
        "max_iter": options.max_iter,
        "throw": options.throw,
        "trace": options.trace,
    }
