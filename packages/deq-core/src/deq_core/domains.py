"""The domain plugin protocol of the ``deq`` CLI and discovery through the entry-point group ``deq.domains``.

A domain package registers one object per domain::

    [project.entry-points."deq.domains"]
    imaging = "deq_imaging.plugin:domain"

The object has a ``name`` (equal to the entry point's name), ``tasks`` (task -> one-line description),
``default_config(task, quick) -> dict`` and ``run(task, config, backend, device, out_dir, seed) -> dict``,
which trains/evaluates and returns the ``report.json`` dict (see :mod:`deq_core.analysis.report`).
An optional ``backends`` tuple names the backends the domain implements (default: torch and jax).
A domain whose runs keep their models (``OUT/models/NAME/``, see :mod:`deq_core.model_files`) also has
``load_model(folder, manifest, device) -> model`` and ``predict(model, input, out_dir, steps, reference) ->
dict`` (with ``rows``, one dict per input, for ``deq predict``), and one that ships models has
``pretrained(name, backend) -> folder``.
The plugin module should import no framework at module level, so that ``deq list`` stays fast.
Domains read ``DEQ_SMOKE=1`` (see :func:`smoke`) to shrink a run to the smallest that exercises every stage.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from deq_core.errors import ConfigError

GROUP = "deq.domains"
SMOKE_ENV = "DEQ_SMOKE"
BACKENDS = ("torch", "jax")

__all__ = ["BACKENDS", "GROUP", "SMOKE_ENV", "Domain", "DomainPlugin", "check_domain", "discover", "smoke"]


@runtime_checkable
class DomainPlugin(Protocol):
    """What the ``deq`` CLI needs from a domain."""

    name: str
    tasks: Mapping[str, str]

    def default_config(self, task: str, quick: bool) -> dict[str, Any]:
        """The configuration of ``task``; ``quick`` asks for a run of minutes on a 2-core CPU."""

    def run(
        self, task: str, config: dict[str, Any], backend: str, device: str, out_dir: Path, seed: int
    ) -> dict[str, Any]:
        """Train and evaluate ``task`` with ``config`` and return the report dict."""


@dataclass(frozen=True)
class Domain:
    """A ready-made :class:`DomainPlugin`: plain functions bundled with the domain's name and tasks."""

    name: str
    tasks: Mapping[str, str]
    default_config: Callable[[str, bool], dict[str, Any]]
    run: Callable[[str, dict[str, Any], str, str, Path, int], dict[str, Any]]
    backends: tuple[str, ...] = BACKENDS
    description: str = ""
    load_model: Callable[[Path, dict[str, Any], str | None], Any] | None = None
    predict: Callable[..., dict[str, Any]] | None = None
    pretrained: Callable[[str, str], Path] | None = None

    def __post_init__(self) -> None:
        check_domain(self)


def check_domain(domain: Any, expected_name: str | None = None) -> None:
    """Raise a :class:`~deq_core.errors.ConfigError` naming what ``domain`` lacks to be a DomainPlugin."""
    for attr in ("name", "tasks", "default_config", "run"):
        if not hasattr(domain, attr):
            raise ConfigError(f"domain plugin {domain!r} has no attribute {attr!r}")
    if not isinstance(domain.name, str) or not domain.name:
        raise ConfigError(f"domain plugin name must be a non-empty string, got {domain.name!r}")
    if expected_name is not None and domain.name != expected_name:
        raise ConfigError(
            f"entry point {expected_name!r} loads a domain named {domain.name!r}; they must match"
        )
    if not isinstance(domain.tasks, Mapping) or not domain.tasks:
        raise ConfigError(f"domain {domain.name!r}: tasks must be a non-empty dict task -> description")
    for attr in ("default_config", "run"):
        if not callable(getattr(domain, attr)):
            raise ConfigError(f"domain {domain.name!r}: {attr} must be callable")
    backends = getattr(domain, "backends", BACKENDS)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ConfigError(
            f"domain {domain.name!r}: backends must be a non-empty subset of {BACKENDS}, got {backends}"
        )


def discover() -> tuple[dict[str, DomainPlugin], dict[str, str]]:
    """Load every ``deq.domains`` entry point: ``(domains by name, load errors by entry-point name)``.

    A plugin that fails to import or to pass :func:`check_domain` is reported, not fatal.
    """
    domains: dict[str, DomainPlugin] = {}
    errors: dict[str, str] = {}
    for entry in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        try:
            domain = entry.load()
            check_domain(domain, entry.name)
        except Exception as exc:  # a broken plugin must not hide the others
            errors[entry.name] = f"{entry.value}: {type(exc).__name__}: {exc}"
            continue
        domains[entry.name] = domain
    return domains, errors


def smoke() -> bool:
    """True when ``DEQ_SMOKE=1``: run as tiny as possible (integration smoke tests)."""
    value = os.environ.get(SMOKE_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise ConfigError(f"{SMOKE_ENV} must be 0 or 1, got {value!r}")
    return value == "1"
