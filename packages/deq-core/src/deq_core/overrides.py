"""Overriding a task's configuration: ``deq run --config FILE --set key=value --data PATH``.

A task's default configuration (``domain.default_config(task, quick)``) names every key it takes. An
override file (TOML, or the JSON ``deq run`` writes beside its report) and ``--set`` may only change those
keys; a nested dict's keys are reached with dots (``params.density=0.1``). A value keeps the kind of the
default it replaces (an int for an int, a number for a float, a list for a list, true/false for a bool); a
default of ``null`` takes any value. ``--data PATH`` sets the ``data`` key of the tasks that have one.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deq_core.errors import ConfigError

__all__ = ["apply_overrides", "parse_assignment", "read_config_file"]


def apply_overrides(
    defaults: Mapping[str, Any],
    file: str | os.PathLike | None = None,
    assignments: Iterable[str] = (),
    data: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """``defaults`` updated by the config ``file``, then each ``key=value`` of ``assignments``, then ``data``.

    Raises :class:`~deq_core.errors.ConfigError` naming an unknown key (with the valid ones) or a value of
    the wrong kind.
    """
    config = copy.deepcopy(dict(defaults))
    if file is not None:
        for keys, value in _flatten(read_config_file(file)):
            _assign(config, keys, value, f"{file}", defaults)
    for text in assignments:
        keys, value = parse_assignment(text)
        _assign(config, keys, value, f"--set {text}", defaults)
    if data is not None:
        if "data" not in config:
            raise ConfigError("this task does not train on your own data (its config has no 'data' key)")
        path = Path(data).expanduser()
        if not path.exists():
            raise ConfigError(f"--data {data}: no such file or folder")
        config["data"] = str(path.resolve())
    return config


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The table of a ``.toml`` or ``.json`` config file; ConfigError naming the file if it is unreadable."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"config file {file} does not exist" if not file.exists() else f"{file} is not a file"
        )
    text = file.read_text(encoding="utf-8")
    try:
        table = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(
            f"config file {file} is not valid {file.suffix[1:].upper() or 'TOML'}: {error}"
        ) from None
    if not isinstance(table, dict):
        raise ConfigError(f"config file {file} must hold a table of keys, not a {type(table).__name__}")
    return table


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` as ``(["a", "b"], value)``; the value is read as TOML (``3``, ``1e-4``, ``[1, 2]``,
    ``true``, ``"x"``), and as a plain string when it is not TOML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: write key=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip().split("."), value


def _flatten(table: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[list[str], Any]]:
    """``(keys, value)`` for every leaf of a nested table (a dict value is descended, not replaced)."""
    leaves = []
    for key, value in table.items():
        if isinstance(value, Mapping) and value:
            leaves += _flatten(value, (*prefix, key))
        else:
            leaves.append(([*prefix, key], value))
    return leaves


def _assign(
    config: dict[str, Any], keys: list[str], value: Any, where: str, defaults: Mapping[str, Any]
) -> None:
    """Set ``config[k1][k2]... = value`` after checking, in ``defaults``, that the keys exist and the kind.

    A table that is empty in ``defaults`` (such as a generator's ``params``) takes any keys.
    """
    table, default = config, defaults
    for depth, key in enumerate(keys):
        if isinstance(default, Mapping) and not default and depth > 0:  # a free-form table
            for inner in keys[depth:-1]:
                table = table.setdefault(inner, {})
            table[keys[-1]] = value
            return
        if not isinstance(default, Mapping) or key not in default:
            valid = ", ".join(sorted(default)) if isinstance(default, Mapping) else "(none: not a table)"
            name = ".".join(keys[: depth + 1])
            raise ConfigError(f"{where}: unknown config key {name!r}; valid keys here: {valid}")
        default = default[key]
        if depth < len(keys) - 1:
            table = table[key]
    if not _same_kind(default, value):
        raise ConfigError(
            f"{where}: {'.'.join(keys)} must be {_kind(default)} like its default {default!r}, got {value!r}"
        )
    table[keys[-1]] = float(value) if isinstance(default, float) else value


def _same_kind(default: Any, value: Any) -> bool:
    """Whether ``value`` may replace ``default`` (ints for floats are fine; bools are not numbers here)."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, list | tuple):
        return isinstance(value, list)
    return isinstance(value, type(default))


def _kind(default: Any) -> str:
    """A short name of ``default``'s kind for messages."""
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        type(default), "a list" if isinstance(default, list | tuple) else f"a {type(default).__name__}"
    )
