"""Labelled LP datasets: generated instances solved by OR-Tools GLOP through an executor, cached on disk.

An instance is named by its generator, the generator's keyword arguments and a seed, so a worker process
rebuilds it from that recipe (no LP is pickled) and the cache key is the recipe list itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.errors import ConfigError
from deq_core.training import atomic_write, map_chunks, spawn_seeds
from deq_opt.baselines.ortools_lp import solve_glop
from deq_opt.datasets import generators
from deq_opt.operators.lp import LinearProgram

__all__ = ["GENERATORS", "LabelledSet", "cache_dir", "generate", "label", "split_seeds"]

GENERATORS = {
    "random_lp": generators.random_lp,
    "pagerank_lp": generators.pagerank_lp,
    "set_cover_lp": generators.set_cover_lp,
    "combinatorial_auction_lp": generators.combinatorial_auction_lp,
    "facility_location_lp": generators.facility_location_lp,
}


@dataclass(frozen=True)
class LabelledSet:
    """Instances with their GLOP optima: ``x`` (B, n), ``y`` (B, m), ``objective`` (B,), GLOP seconds."""

    lps: list[LinearProgram]
    x: np.ndarray
    y: np.ndarray
    objective: np.ndarray
    seconds: np.ndarray


def generate(generator: str, params: dict[str, Any], seed: int) -> LinearProgram:
    """The instance ``GENERATORS[generator](**params, seed=seed)``."""
    if generator not in GENERATORS:
        raise ConfigError(f"unknown LP generator {generator!r}; valid: {', '.join(GENERATORS)}")
    return GENERATORS[generator](**params, seed=seed)


def _solve(recipe: tuple[str, dict[str, Any], int]) -> tuple[np.ndarray, np.ndarray, float, float]:
    """GLOP solution of one recipe (runs in a worker); raises unless optimal."""
    lp = generate(*recipe)
    res = solve_glop(lp)
    if res.status != "optimal":
        raise ValueError(f"GLOP did not solve generated instance {lp.name}: status {res.status}")
    return res.x, res.y, res.objective, res.seconds


def cache_dir() -> Path:
    """The label cache: ``$DEQ_OPT_CACHE``, else ``$XDG_CACHE_HOME/deq-opt``, else ``~/.cache/deq-opt``.

    Empty variables count as unset; a relative ``XDG_CACHE_HOME`` is ignored, as the XDG spec says.
    """
    own = os.environ.get("DEQ_OPT_CACHE", "")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "deq-opt"


def label(
    generator: str,
    params: dict[str, Any],
    count: int,
    seed: int,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    cache: Path | None = None,
    progress: bool = True,
) -> LabelledSet:
    """``count`` seeded instances of ``generator(**params)`` labelled by GLOP, cached in ``cache`` (default
    :func:`cache_dir`) as ``<generator>-<hash of the recipes>.npz``, written atomically."""
    seeds = spawn_seeds(seed, count)
    lps = [generate(generator, params, s) for s in seeds]
    key = json.dumps([generator, params, seeds], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    folder = cache_dir() if cache is None else Path(cache)
    path = folder / f"{generator}-{digest}.npz"
    if path.is_file():
        with np.load(path) as data:
            return LabelledSet(lps, data["x"], data["y"], data["objective"], data["seconds"])
    try:  # before the labelling, so that a bad location fails at once
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot create the GLOP label cache {folder} ({err.strerror}); "
            "set DEQ_OPT_CACHE to a writable folder"
        ) from err
    recipes = [(generator, params, s) for s in seeds]
    if workers == 1 and executor is None:
        results = [_solve(r) for r in recipes]
    else:
        results = map_chunks(
            _solve, recipes, executor=executor, workers=workers, progress=progress, desc="GLOP labels"
        )
    out = LabelledSet(
        lps,
        np.stack([r[0] for r in results]),
        np.stack([r[1] for r in results]),
        np.array([r[2] for r in results]),
        np.array([r[3] for r in results]),
    )
    buffer = io.BytesIO()
    np.savez(buffer, x=out.x, y=out.y, objective=out.objective, seconds=out.seconds)
    atomic_write(path, buffer.getvalue())
    return out


def split_seeds(seed: int) -> Sequence[int]:
    """Independent seeds for the train, test and warm-start sets of one run."""
    return spawn_seeds(seed, 3)
