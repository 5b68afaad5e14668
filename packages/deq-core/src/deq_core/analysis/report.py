"""The ``report.json`` of a ``deq run``: schema check, assembly, version stamp and atomic write.

Schema (every number finite or ``null``; ``n`` = number of budgets)::

    domain, task, backend, device: str      backend in {"torch", "jax"}
    iterations: [int] * n                    strictly increasing budgets t >= 1
    quality: {metric: str, higher_is_better: bool, implicit: [number] * n, explicit: number,
              baselines: {name: {value: number, seconds: number >= 0}}}
    lipschitz: {max: [number] * n, mean: [number] * n,
                local: [number] * n                         (optional: power-iteration estimate),
                explicit: {max, mean[, local]: number}}     (optional: the explicit model's)
    params: {implicit: int, explicit: int}
    seconds: number >= 0
    config: {str: JSON value}
    versions: {str: str}                      python, numpy, the backend, installed deq packages
    extra: {str: JSON value}                  (optional: anything domain-specific)
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deq_core.files import atomic_write

BACKENDS = ("torch", "jax")
REQUIRED = ("domain", "task", "backend", "device", "iterations", "quality", "lipschitz", "params")
REQUIRED += ("seconds", "config", "versions")
OPTIONAL = ("extra",)
_BACKEND_DISTRIBUTIONS = {"torch": ("torch",), "jax": ("jax", "jaxlib", "equinox")}
_DEQ_DISTRIBUTIONS = ("deq-core", "deq-imaging", "deq-pde", "deq-opt")


class ReportError(ValueError):
    """A report does not follow the ``report.json`` schema; the message names the offending key."""


def _fail(path: str, problem: str) -> None:
    raise ReportError(f"{path}: {problem}")


def _keys(obj: Any, path: str, required: Sequence[str], optional: Sequence[str] = ()) -> None:
    """Check that ``obj`` is a dict holding every required key and no unknown key."""
    if not isinstance(obj, Mapping):
        _fail(path, f"must be an object (dict), got {type(obj).__name__}")
    for key in required:
        if key not in obj:
            _fail(f"{path}[{key!r}]", "missing")
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        _fail(f"{path}[{unknown[0]!r}]", f"unknown key; allowed keys are {sorted([*required, *optional])}")


def _number(value: Any, path: str, minimum: float | None = None) -> None:
    """A finite number (or null), at least ``minimum`` when given."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, f"must be a number or null, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        _fail(path, f"must be finite (store null for an undefined value), got {value!r}")
    if minimum is not None and value < minimum:
        _fail(path, f"must be >= {minimum}, got {value!r}")


def _string(value: Any, path: str) -> None:
    if not isinstance(value, str) or not value:
        _fail(path, f"must be a non-empty string, got {value!r}")


def _series(value: Any, path: str, n: int) -> None:
    """A list of ``n`` numbers, one per budget."""
    if not isinstance(value, list):
        _fail(path, f"must be a list with one number per budget, got {type(value).__name__}")
    if len(value) != n:
        _fail(path, f"must hold one value per budget ({n}), got {len(value)}")
    for i, v in enumerate(value):
        _number(v, f"{path}[{i}]")


def _json_value(value: Any, path: str) -> None:
    """Plain JSON data: dicts with string keys, lists, strings, finite numbers, bools, null."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                _fail(path, f"keys must be strings, got {k!r}")
            _json_value(v, f"{path}[{k!r}]")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _json_value(v, f"{path}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        _fail(path, f"must be finite, got {value!r}")
    elif value is not None and not isinstance(value, str | int | float | bool):
        _fail(path, f"must be plain JSON data, got {type(value).__name__}")


def validate_report(report: Any) -> None:
    """Raise :class:`ReportError` naming the first key of ``report`` that breaks the schema."""
    _keys(report, "report", REQUIRED, OPTIONAL)
    for key in ("domain", "task", "device"):
        _string(report[key], f"report[{key!r}]")
    if report["backend"] not in BACKENDS:
        _fail("report['backend']", f"must be one of {list(BACKENDS)}, got {report['backend']!r}")
    iterations = report["iterations"]
    if not isinstance(iterations, list) or not iterations:
        _fail("report['iterations']", f"must be a non-empty list of budgets, got {iterations!r}")
    for i, t in enumerate(iterations):
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            _fail(f"report['iterations'][{i}]", f"must be an integer >= 1, got {t!r}")
        if i and t <= iterations[i - 1]:
            _fail(f"report['iterations'][{i}]", f"budgets must increase strictly, got {iterations}")
    n = len(iterations)

    quality = report["quality"]
    _keys(quality, "report['quality']", ("metric", "higher_is_better", "implicit", "explicit", "baselines"))
    _string(quality["metric"], "report['quality']['metric']")
    if not isinstance(quality["higher_is_better"], bool):
        _fail(
            "report['quality']['higher_is_better']",
            f"must be true or false, got {quality['higher_is_better']!r}",
        )
    _series(quality["implicit"], "report['quality']['implicit']", n)
    _number(quality["explicit"], "report['quality']['explicit']")
    baselines = quality["baselines"]
    if not isinstance(baselines, Mapping):
        _fail("report['quality']['baselines']", f"must be an object, got {type(baselines).__name__}")
    for name, entry in baselines.items():
        path = f"report['quality']['baselines'][{name!r}]"
        _keys(entry, path, ("value", "seconds"))
        _number(entry["value"], f"{path}['value']")
        _number(entry["seconds"], f"{path}['seconds']", minimum=0.0)

    lipschitz = report["lipschitz"]
    _keys(lipschitz, "report['lipschitz']", ("max", "mean"), ("local", "explicit"))
    for key in ("max", "mean", "local"):
        if key in lipschitz:
            _series(lipschitz[key], f"report['lipschitz'][{key!r}]", n)
    if "explicit" in lipschitz:
        explicit = lipschitz["explicit"]
        _keys(explicit, "report['lipschitz']['explicit']", ("max", "mean"), ("local",))
        for key, value in explicit.items():
            _number(value, f"report['lipschitz']['explicit'][{key!r}]", minimum=0.0)

    params = report["params"]
    _keys(params, "report['params']", ("implicit", "explicit"))
    for key in ("implicit", "explicit"):
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail(f"report['params'][{key!r}]", f"must be a parameter count (integer >= 0), got {value!r}")
    _number(report["seconds"], "report['seconds']", minimum=0.0)
    if report["seconds"] is None:
        _fail("report['seconds']", "must be a number, got null")
    if not isinstance(report["config"], Mapping):
        _fail("report['config']", f"must be an object, got {type(report['config']).__name__}")
    _json_value(report["config"], "report['config']")
    versions = report["versions"]
    if not isinstance(versions, Mapping):
        _fail("report['versions']", f"must be an object, got {type(versions).__name__}")
    for key in ("python", "numpy", report["backend"]):
        if key not in versions:
            _fail(f"report['versions'][{key!r}]", "missing")
    for key, value in versions.items():
        _string(value, f"report['versions'][{key!r}]")
    if "extra" in report:
        if not isinstance(report["extra"], Mapping):
            _fail("report['extra']", f"must be an object, got {type(report['extra']).__name__}")
        _json_value(report["extra"], "report['extra']")


def package_versions(backend: str) -> dict[str, str]:
    """Versions of python, numpy, ``backend``'s distributions and the installed deq packages."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    versions = {"python": platform.python_version()}
    for dist in ("numpy", *_BACKEND_DISTRIBUTIONS[backend], *_DEQ_DISTRIBUTIONS):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def finite_or_none(value: Any) -> Any:
    """Plain Python data (arrays and scalars of numpy or a framework as lists and numbers) with every
    non-finite float (a diverged value) replaced by None, ready for strict JSON."""
    if isinstance(value, Mapping):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy / framework arrays and scalars
        return finite_or_none(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_report(
    *,
    domain: str,
    task: str,
    backend: str,
    device: str,
    iterations: Sequence[int],
    metric: str,
    higher_is_better: bool,
    implicit: Sequence[float],
    explicit: float,
    baselines: Mapping[str, Mapping[str, float]],
    lipschitz: Mapping[str, Any],
    params: Mapping[str, int],
    seconds: float,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a schema-valid report (non-finite values become null, versions are filled in) and check it."""
    report = {
        "domain": domain,
        "task": task,
        "backend": backend,
        "device": device,
        "iterations": [int(t) for t in iterations],
        "quality": {
            "metric": metric,
            "higher_is_better": bool(higher_is_better),
            "implicit": list(implicit),
            "explicit": explicit,
            "baselines": {name: dict(entry) for name, entry in baselines.items()},
        },
        "lipschitz": dict(lipschitz),
        "params": {key: int(value) for key, value in params.items()},
        "seconds": seconds,
        "config": dict(config),
        "versions": package_versions(backend),
    }
    if extra is not None:
        report["extra"] = dict(extra)
    report = finite_or_none(report)
    validate_report(report)
    return report


def write_report(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Validate ``report`` and write it as JSON to ``path`` atomically (temp file + ``os.replace``)."""
    validate_report(report)
    return atomic_write(path, json.dumps(report, indent=2, allow_nan=False) + "\n")
