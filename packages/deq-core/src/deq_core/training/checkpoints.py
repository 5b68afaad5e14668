"""``CheckpointDir``: numbered checkpoints in one directory, each committed by a manifest written last.

A checkpoint at step ``n`` is a set of files ``step-<n>.<name>`` plus the manifest ``step-<n>.json`` that
records the step and, for every file, its size and SHA-256. Every file is written atomically and the
manifest goes last, so a crash at any moment leaves either a complete checkpoint or none.

Damage after the fact (a flipped byte, a file copied over from another step, a truncated or missing file)
is caught by the checksums: :meth:`CheckpointDir.verify` raises :class:`~deq_core.errors.CheckpointError`
naming the file, and :meth:`CheckpointDir.latest` (what a resuming trainer asks for) skips a damaged
checkpoint with a warning naming the file and returns the newest intact one. A manifest written by an
older deq-core (format 1, sizes only) cannot be verified and is an error, never skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from deq_core.errors import CheckpointError, ConfigError
from deq_core.files import atomic_write

_MANIFEST = re.compile(r"^step-(\d{9})\.json$")
_STEP_FILE = re.compile(r"^step-(\d{9})\.")
FORMAT = 2


def sha256(path: Path) -> str:
    """The hex SHA-256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class CheckpointDir:
    """A directory of checkpoints ``step-<n>.*``; keeps the newest ``keep`` when committing a new one."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"CheckpointDir.keep must be an integer >= 1, got {keep!r}")
        self.directory = Path(directory)
        self.keep = keep

    def path(self, step: int, name: str) -> Path:
        """The path of file ``name`` (e.g. ``"model.safetensors"``) of the checkpoint at ``step``."""
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name) or name == "json":
            raise ValueError(
                f"bad checkpoint file name {name!r}: use letters, digits, '_', '-', '.' (not 'json')"
            )
        return self.directory / f"step-{step:09d}.{name}"

    def prepare(self) -> None:
        """Create the directory (and its parents) if needed."""
        self.directory.mkdir(parents=True, exist_ok=True)

    def commit(self, step: int, names: list[str], metadata: dict[str, Any] | None = None) -> Path:
        """Write the manifest that makes the files ``names`` of ``step`` a checkpoint, then prune old ones."""
        files = {}
        for name in names:
            path = self.path(step, name)
            if not path.is_file():
                raise FileNotFoundError(f"checkpoint step {step}: file {path} was not written")
            files[name] = {"bytes": path.stat().st_size, "sha256": sha256(path)}
        manifest = {"format": FORMAT, "step": step, "files": files, "metadata": metadata or {}}
        path = atomic_write(self._manifest_path(step), json.dumps(manifest, indent=1, default=str))
        self.prune()
        return path

    def steps(self) -> list[int]:
        """Steps of the checkpoints whose manifest is sound and whose files have their sizes, oldest first.

        Cheap (no file is read); :meth:`verify` and :meth:`latest` also check the checksums.
        """
        if not self.directory.is_dir():
            return []
        found = sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _MANIFEST.match(p.name)))
        return [step for step in found if self._complete(step)]

    def latest(self) -> int | None:
        """The newest intact checkpoint's step, or None; each damaged newer one is skipped with a warning."""
        for step in reversed(self.steps()):
            try:
                self.verify(step)
            except CheckpointError as error:
                warnings.warn(f"ignoring checkpoint {step}: {error}", stacklevel=2)
                continue
            return step
        return None

    def manifest(self, step: int) -> dict[str, Any]:
        """The manifest of the checkpoint at ``step`` (``step``, ``files``, ``metadata``).

        Raises ``FileNotFoundError`` when there is none, and :class:`~deq_core.errors.CheckpointError` when it
        is not valid JSON, records another step, or was written in another format.
        """
        manifest = self._read_manifest(step)
        self._check_format(step, manifest)
        return manifest

    def verify(self, step: int, names: list[str] | None = None) -> dict[str, Any]:
        """Check the files ``names`` (default: all) of ``step`` against its manifest and return the manifest.

        Raises :class:`~deq_core.errors.CheckpointError` naming the first file that is not listed, is
        missing, has another size, or whose SHA-256 differs (damaged, or replaced by another step's file).
        """
        manifest = self.manifest(step)
        files = manifest["files"]
        for name in files if names is None else names:
            path = self.path(step, name)
            if name not in files:
                raise CheckpointError(f"checkpoint {step} in {self.directory} has no file {path.name}")
            recorded = files[name]
            if not path.is_file():
                raise CheckpointError(f"{path} is missing")
            if path.stat().st_size != recorded["bytes"]:
                raise CheckpointError(
                    f"{path} has {path.stat().st_size} bytes, its manifest records {recorded['bytes']}"
                )
            if sha256(path) != recorded["sha256"]:
                raise CheckpointError(
                    f"{path} does not match the SHA-256 in its manifest (damaged, or another step's file)"
                )
        return manifest

    def prune(self) -> None:
        """Delete all but the newest ``keep`` checkpoints, and step files no manifest owns that are older."""
        steps = self.steps()
        keep = set(steps[-self.keep :])
        newest = steps[-1] if steps else -1
        for step in steps:
            if step not in keep:  # the manifest goes first: a half-deleted checkpoint is never "complete"
                self._manifest_path(step).unlink(missing_ok=True)
        for path in self.directory.iterdir():
            match = _STEP_FILE.match(path.name)
            if match and int(match.group(1)) not in keep and int(match.group(1)) < newest:
                path.unlink(missing_ok=True)
            elif path.name.startswith(".step-") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a temporary file left by a crash mid-write

    def _manifest_path(self, step: int) -> Path:
        return self.directory / f"step-{step:09d}.json"

    def _read_manifest(self, step: int) -> dict[str, Any]:
        """The parsed manifest of ``step``; CheckpointError when it is damaged or records another step."""
        path = self._manifest_path(step)
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no checkpoint at step {step}: {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"checkpoint manifest {path} is not valid JSON: {error}") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
            raise CheckpointError(f"checkpoint manifest {path} records no format")
        if manifest.get("step") != step:
            raise CheckpointError(
                f"checkpoint manifest {path} records step {manifest.get('step')!r} (another step's manifest?)"
            )
        if manifest["format"] == FORMAT and not _valid_files(manifest.get("files")):
            raise CheckpointError(f"checkpoint manifest {path} holds no valid list of files and checksums")
        return manifest

    def _check_format(self, step: int, manifest: dict[str, Any]) -> None:
        """CheckpointError for a manifest of another format: an older one has no checksums to verify."""
        found = manifest["format"]
        if found == FORMAT:
            return
        path = self._manifest_path(step)
        if found < FORMAT:
            raise CheckpointError(
                f"checkpoint manifest {path} has format {found}, written by an older deq-core without "
                f"checksums, so its files cannot be verified; train into a new checkpoint_dir, or move the "
                f"old checkpoints out of {self.directory}"
            )
        raise CheckpointError(
            f"checkpoint manifest {path} has format {found}, newer than this deq-core reads ({FORMAT})"
        )

    def _complete(self, step: int) -> bool:
        """Whether the manifest is sound and every file has its recorded size (warns on the first miss).

        A manifest of another format raises instead: skipping it would let a new run prune the old files.
        """
        try:
            manifest = self._read_manifest(step)
        except CheckpointError as error:
            warnings.warn(f"ignoring checkpoint {step}: {error}", stacklevel=3)
            return False
        self._check_format(step, manifest)
        for name, recorded in manifest["files"].items():
            path = self.path(step, name)
            if not path.is_file() or path.stat().st_size != recorded["bytes"]:
                warnings.warn(
                    f"ignoring checkpoint {step}: {path} is missing or not {recorded['bytes']} bytes",
                    stacklevel=3,
                )
                return False
        return True


def _valid_files(files: Any) -> bool:
    """Whether a manifest's ``files`` maps names to ``{"bytes": int, "sha256": str}``."""
    return isinstance(files, dict) and all(
        isinstance(entry, dict)
        and isinstance(entry.get("bytes"), int)
        and isinstance(entry.get("sha256"), str)
        for entry in files.values()
    )
