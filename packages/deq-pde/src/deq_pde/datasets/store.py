"""Chunked sample store: JSON manifest with a config hash, atomic chunk files, resumable generation."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from deq_core.files import atomic_path, atomic_write

MANIFEST = "manifest.json"
FORMAT = "deq-pde-dataset"
_CHUNK = re.compile(r"chunk_(\d{8})_(\d{8})\.npz")

ChunkWorker = Callable[..., dict[str, np.ndarray]]


def config_hash(config: dict) -> str:
    """SHA-256 of the config's canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a dataset folder; ValueError if it is missing or not one of ours."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{path} does not exist: {folder} is not a generated dataset folder")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from exc
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} manifest")
    return manifest


def _write_manifest(folder: Path, manifest: dict) -> None:
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def _open_manifest(folder: Path, kind: str, config: dict) -> dict:
    """Existing manifest checked against ``config``, or a fresh one written for it."""
    digest = config_hash(config)
    if (folder / MANIFEST).exists():
        manifest = read_manifest(folder)
        if manifest.get("kind") != kind or manifest.get("config_hash") != digest:
            old = manifest.get("config", {})
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            details = ", ".join(f"{k}: {old.get(k)!r} on disk vs {config.get(k)!r} requested" for k in diff)
            raise ValueError(
                f"dataset folder {folder} holds a different {manifest.get('kind')!r} config "
                f"(hash {str(manifest.get('config_hash'))[:12]} vs {digest[:12]}): "
                f"{details or 'kind differs'}; "
                "use another folder or delete this one"
            )
        return manifest
    manifest = {
        "format": FORMAT,
        "version": 1,
        "kind": kind,
        "config": config,
        "config_hash": digest,
        "num_samples": 0,
    }
    _write_manifest(folder, manifest)
    return manifest


def _chunks_on_disk(folder: Path) -> dict[int, int]:
    """Finished chunk files as ``start -> stop`` (the longest one per start)."""
    found: dict[int, int] = {}
    for path in folder.glob("chunk_*.npz"):
        m = _CHUNK.fullmatch(path.name)
        if m:
            start, stop = int(m[1]), int(m[2])
            found[start] = max(stop, found.get(start, stop))
    return found


def _chunk_path(folder: Path, start: int, stop: int) -> Path:
    return folder / f"chunk_{start:08d}_{stop:08d}.npz"


def generate(
    folder: str | Path,
    kind: str,
    config: dict,
    worker: ChunkWorker,
    num_samples: int,
    chunk_size: int,
    executor: cf.Executor | None = None,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Make samples ``[0, num_samples)`` by ``worker(config, start, stop)`` per chunk, skipping done ones.

    Chunks run on ``executor`` (default: a spawn-based ProcessPoolExecutor with ``workers`` processes); each
    finished chunk is written atomically, so an interrupted run resumes where it stopped.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _open_manifest(folder, kind, config)
    done = _chunks_on_disk(folder)
    wanted = [(s, min(s + chunk_size, num_samples)) for s in range(0, num_samples, chunk_size)]
    todo = [(s, e) for s, e in wanted if done.get(s, -1) < e]
    if todo:
        own = executor is None
        if own:
            executor = cf.ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn")
            )
        try:
            futures = {executor.submit(worker, config, s, e): (s, e) for s, e in todo}
            bar = tqdm(
                total=sum(e - s for s, e in todo), desc=f"{kind} samples", unit="sample", disable=not progress
            )
            with bar:
                for future in cf.as_completed(futures):
                    start, stop = futures[future]
                    arrays = future.result()
                    target = _chunk_path(folder, start, stop)
                    with atomic_path(target) as temporary, open(temporary, "wb") as f:
                        np.savez(f, **arrays)  # a file object: savez would add ".npz" to a temporary name
                    if start in done and done[start] < stop:
                        _chunk_path(folder, start, done[start]).unlink(missing_ok=True)
                    bar.update(stop - start)
        finally:
            if own:
                executor.shutdown(wait=True, cancel_futures=True)
    if num_samples > manifest["num_samples"]:
        manifest["num_samples"] = num_samples
        _write_manifest(folder, manifest)
    return folder


def stack_samples(samples: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One chunk from its samples: each key's arrays stacked along a new leading axis."""
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


def load(
    folder: str | Path, keys: tuple[str, ...], num_samples: int | None = None, kind: str | None = None
) -> tuple[np.ndarray, ...]:
    """Arrays ``keys`` of the first ``num_samples`` samples (default: all generated), concatenated.

    With ``kind``, a folder holding another kind of dataset is an error.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if kind is not None and manifest.get("kind") != kind:
        raise ValueError(f"{folder} does not hold a {kind!r} dataset (it holds {manifest.get('kind')!r})")
    total = manifest["num_samples"]
    n = total if num_samples is None else num_samples
    if not 1 <= n <= total:
        raise ValueError(f"{folder} holds {total} finished samples, cannot load {n}")
    chunk_size = manifest["config"]["chunk_size"]
    done = _chunks_on_disk(folder)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for start in range(0, n, chunk_size):
        if done.get(start, -1) < min(start + chunk_size, total):
            raise ValueError(f"{folder} is missing the chunk starting at sample {start}; rerun generation")
        with np.load(_chunk_path(folder, start, done[start])) as data:
            for k in keys:
                if k not in data:
                    raise ValueError(
                        f"chunk {start} in {folder} has no array {k!r} (has {sorted(data.files)})"
                    )
                parts[k].append(data[k])
    return tuple(np.concatenate(parts[k])[:n] for k in keys)
