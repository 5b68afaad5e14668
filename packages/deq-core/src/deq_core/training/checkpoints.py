"""``CheckpointDir``: numbered checkpoints in one directory, each committed by a manifest written last.

A checkpoint at step ``n`` is a set of files ``step-<n>.<name>`` plus the manifest ``step-<n>.json`` that
lists them with their sizes. Every file is written atomically and the manifest goes last, so a crash at
any moment leaves either a complete checkpoint or none: :meth:`CheckpointDir.latest` only returns steps
whose manifest exists and whose files all have the recorded sizes.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from deq_core.files import atomic_write

_MANIFEST = re.compile(r"^step-(\d{9})\.json$")
_STEP_FILE = re.compile(r"^step-(\d{9})\.")
FORMAT = 1


class CheckpointDir:
    """A directory of checkpoints ``step-<n>.*``; keeps the newest ``keep`` when committing a new one."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"CheckpointDir keep must be >= 1, got {keep}")
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
            files[name] = path.stat().st_size
        manifest = {"format": FORMAT, "step": step, "files": files, "metadata": metadata or {}}
        path = atomic_write(
            self.directory / f"step-{step:09d}.json", json.dumps(manifest, indent=1, default=str)
        )
        self.prune()
        return path

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _MANIFEST.match(p.name)))
        return [step for step in found if self._complete(step)]

    def latest(self) -> int | None:
        """The newest complete checkpoint's step, or None when there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def manifest(self, step: int) -> dict[str, Any]:
        """The manifest of the checkpoint at ``step`` (``files``, ``metadata``)."""
        path = self.directory / f"step-{step:09d}.json"
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no checkpoint at step {step}: {path} does not exist") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"checkpoint manifest {path} is not valid JSON: {error}") from None
        if manifest.get("format") != FORMAT or manifest.get("step") != step:
            raise ValueError(f"checkpoint manifest {path}: unknown format or step {manifest.get('step')!r}")
        return manifest

    def prune(self) -> None:
        """Delete all but the newest ``keep`` checkpoints, and step files no manifest owns that are older."""
        steps = self.steps()
        keep = set(steps[-self.keep :])
        newest = steps[-1] if steps else -1
        for step in steps:
            if step not in keep:  # the manifest goes first: a half-deleted checkpoint is never "complete"
                (self.directory / f"step-{step:09d}.json").unlink(missing_ok=True)
        for path in self.directory.iterdir():
            match = _STEP_FILE.match(path.name)
            if match and int(match.group(1)) not in keep and int(match.group(1)) < newest:
                path.unlink(missing_ok=True)
            elif path.name.startswith(".step-") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a temporary file left by a crash mid-write

    def _complete(self, step: int) -> bool:
        """Whether every file the manifest lists exists with its recorded size (warns on the first miss)."""
        try:
            files = self.manifest(step)["files"]
        except (ValueError, FileNotFoundError) as error:
            warnings.warn(f"ignoring checkpoint {step}: {error}", stacklevel=3)
            return False
        for name, size in files.items():
            path = self.path(step, name)
            if not path.is_file() or path.stat().st_size != size:
                warnings.warn(
                    f"ignoring checkpoint {step}: {path} is missing or not {size} bytes", stacklevel=3
                )
                return False
        return True
