"""Model folders: every model ``deq run`` trains, kept so that it can be loaded and applied again.

A model folder (``OUT/models/NAME/``) holds ``model.json`` and the files it lists. ``model.json`` records:

- ``format``: the version of this layout (:data:`FORMAT`);
- ``domain``, ``task``, ``backend``: where the model comes from (``domain`` picks the plugin that loads it);
- ``name`` (``"implicit"``, ``"explicit"``, ...) and ``model_class``, the class the domain rebuilds;
- ``config``: the model's full configuration, enough to rebuild its skeleton before the weights go in;
- ``apply``: everything else needed to apply it (operator, kernel, mesh, normalisation, feature scaling);
- ``metrics``: what it scored in the run's report; ``versions``: the packages of the run that wrote it;
- ``files``: each weight or data file's size and SHA-256.

:func:`write_model` writes the folder into a temporary sibling and renames it into place, so a reader sees
a whole model or none. :func:`read_manifest` checks the format and every checksum, and :func:`load_model`
hands the folder to its domain's ``load_model``. ``"pretrained:DOMAIN/NAME"`` names a model a domain ships.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from deq_core.analysis.report import finite_or_none
from deq_core.domains import BACKENDS, discover
from deq_core.errors import ModelFileError
from deq_core.files import atomic_write, current_umask
from deq_core.training.checkpoints import sha256

FORMAT = 1
MANIFEST = "model.json"
PRETRAINED = "pretrained:"
FIELDS = ("domain", "task", "backend", "name", "model_class", "config", "apply", "metrics", "versions")

__all__ = [
    "FORMAT",
    "MANIFEST",
    "PRETRAINED",
    "load_model",
    "read_card",
    "read_manifest",
    "resolve",
    "shipped",
    "write_model",
]


def write_model(
    folder: str | os.PathLike,
    write_files: Callable[[Path], Iterable[str]],
    **fields: Any,
) -> Path:
    """Write a model folder: ``write_files(staging)`` writes the weight files and returns their names.

    ``fields`` are the manifest's entries (:data:`FIELDS`, all required). An existing model at ``folder``
    is replaced whole. Returns ``folder``.
    """
    missing = [key for key in FIELDS if key not in fields]
    unknown = sorted(set(fields) - set(FIELDS))
    if missing or unknown:
        raise ValueError(f"write_model: missing fields {missing}, unknown fields {unknown}; give {FIELDS}")
    if fields["backend"] not in BACKENDS:
        raise ValueError(f"write_model: backend must be one of {BACKENDS}, got {fields['backend']!r}")
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        names = list(write_files(staging))
        files = {}
        for name in names:
            path = staging / name
            if name == MANIFEST or path.parent != staging or not path.is_file():
                raise ValueError(
                    f"write_model: {name!r} is not a file that write_files wrote into the folder"
                )
            files[name] = {"bytes": path.stat().st_size, "sha256": sha256(path)}
        manifest = finite_or_none({"format": FORMAT, **fields, "files": files})
        atomic_write(staging / MANIFEST, json.dumps(manifest, indent=1, allow_nan=False, default=str) + "\n")
        os.chmod(staging, 0o777 & ~current_umask())
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The verified ``model.json`` of the model folder ``path`` (or of the ``model.json`` file itself).

    Raises :class:`~deq_core.errors.ModelFileError` naming the problem: no such folder, no ``model.json``,
    invalid JSON, another format, a missing field, or a listed file that is missing or damaged.
    """
    folder = Path(path)
    if folder.name == MANIFEST and folder.is_file():
        folder = folder.parent
    if not folder.exists():
        raise ModelFileError(f"model {folder} does not exist")
    if not folder.is_dir():
        raise ModelFileError(
            f"model {folder} is a file; give the model's folder (the one holding {MANIFEST})"
        )
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelFileError(f"{folder} is not a deq model folder: it has no {MANIFEST}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{manifest_path} is not valid JSON (damaged?): {error}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
        raise ModelFileError(f"{manifest_path} records no format; it was not written by deq")
    if manifest["format"] != FORMAT:
        age = "an older" if manifest["format"] < FORMAT else "a newer"
        raise ModelFileError(
            f"{manifest_path} has format {manifest['format']}, written by {age} deq-core; this one reads "
            f"format {FORMAT} (install the deq-core that wrote it, or train the model again)"
        )
    missing = [key for key in (*FIELDS, "files") if key not in manifest]
    if missing:
        raise ModelFileError(f"{manifest_path} lacks the fields {missing}")
    _verify_files(folder, manifest["files"])
    return manifest


def resolve(path: str | os.PathLike, backend: str | None = None) -> Path:
    """The folder of the model ``path``: a folder as given, or the one ``"pretrained:DOMAIN/NAME"`` names.

    A pretrained model comes in the ``backend`` asked for (default: ``$DEQ_BACKEND``, else one installed).
    """
    text = os.fspath(path)
    if not text.startswith(PRETRAINED):
        return Path(text)
    domain_name, _, name = text[len(PRETRAINED) :].partition("/")
    domain = _domain(domain_name, f"pretrained model {text!r}")
    if getattr(domain, "pretrained", None) is None:
        raise ModelFileError(f"domain {domain_name!r} ships no pretrained models")
    return Path(domain.pretrained(name, backend or _default_backend()))


def shipped(package: str, name: str, backend: str) -> Path:
    """The model folder ``package/pretrained/NAME-BACKEND`` a domain package ships (its ``pretrained`` hook).

    Raises :class:`~deq_core.errors.ModelFileError` listing the models it ships when there is no such one.
    """
    root = Path(str(importlib.resources.files(package))) / "pretrained"
    folder = root / f"{name}-{backend}"
    if not (folder / MANIFEST).is_file():
        found = sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file()) if root.is_dir() else []
        listed = ", ".join(found) or "none"
        raise ModelFileError(f"{package} has no pretrained model {name!r} for {backend}; it ships: {listed}")
    return folder


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON block that ends ``path/CARD.md``, a shipped model's card (for the domains' pretrained tests:
    the recipe of a small test subset and the metrics the model scored on it)."""
    card = Path(path) / "CARD.md"
    try:
        return json.loads(card.read_text().split("```json\n", 1)[1].split("```", 1)[0])
    except (OSError, IndexError, ValueError) as error:
        raise ModelFileError(f"{card}: no readable model card with a JSON block ({error})") from None


def load_model(path: str | os.PathLike, device: str | None = None, backend: str | None = None) -> Any:
    """Load the model folder (or ``"pretrained:DOMAIN/NAME"``) ``path`` through its domain, on ``device``.

    The result is the domain's model object, callable on the domain's natural input with an optional
    test-time budget ``steps``; its ``manifest`` attribute is the verified ``model.json``.
    """
    folder = resolve(path, backend)
    manifest = read_manifest(folder)
    domain = _domain(manifest["domain"], f"model {folder}")
    if getattr(domain, "load_model", None) is None:
        raise ModelFileError(
            f"domain {manifest['domain']!r} cannot load models (its plugin has no load_model)"
        )
    return domain.load_model(folder, manifest, device)


def _domain(name: str, what: str) -> Any:
    """The installed domain plugin ``name``; ModelFileError naming ``what`` needs it when it is not there."""
    domains, errors = discover()
    if name in errors:
        raise ModelFileError(
            f"{what} needs domain {name!r}, which is installed but failed to load: {errors[name]}"
        )
    if name not in domains:
        installed = ", ".join(sorted(domains)) or "none"
        raise ModelFileError(f"{what} needs domain {name!r}, which is not installed (installed: {installed})")
    return domains[name]


def _default_backend() -> str:
    """``$DEQ_BACKEND``, else the first installed backend."""
    import importlib.util

    installed = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    return os.environ.get("DEQ_BACKEND") or (installed[0] if installed else BACKENDS[0])


def _verify_files(folder: Path, files: Any) -> None:
    """ModelFileError naming the first listed file that is missing, of another size, or damaged."""
    if not isinstance(files, Mapping):
        raise ModelFileError(f"{folder / MANIFEST}: 'files' must map names to sizes and checksums")
    for name, recorded in files.items():
        path = folder / name
        if not isinstance(recorded, Mapping) or not {"bytes", "sha256"} <= recorded.keys():
            raise ModelFileError(f"{folder / MANIFEST}: no size and checksum recorded for {name!r}")
        if not path.is_file():
            raise ModelFileError(f"{path} is missing (listed in {MANIFEST})")
        if path.stat().st_size != recorded["bytes"] or sha256(path) != recorded["sha256"]:
            raise ModelFileError(f"{path} is damaged: its size or SHA-256 differs from {MANIFEST}")


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename the finished ``staging`` folder to ``target``, replacing a previous model there."""
    if target.exists() and not (target / MANIFEST).is_file() and any(target.iterdir()):
        raise ModelFileError(f"{target} exists and is not a deq model folder; not replacing it")
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.replace(target, old / "model")
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
