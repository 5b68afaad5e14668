"""Training on your own LPs: ``deq run opt --task T --data FOLDER`` reads the folder's ``.mps`` files.

All files must be LPs of one shape (``m`` rows x ``n`` columns, the models' size) with an optimum. GLOP
labels them, cached by the files' contents (``<label cache>/mps-<hash>.npz``, see
:func:`deq_opt.datasets.labels.cache_dir`), and a seeded shuffle puts a fifth of them (at least one) in the
test set and the rest in the training set; the task only chooses the models' and training's settings.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from deq_core.errors import ConfigError
from deq_core.training import atomic_write, map_chunks
from deq_core.training.checkpoints import sha256
from deq_opt.baselines.ortools_lp import solve_glop
from deq_opt.datasets.labels import LabelledSet, cache_dir
from deq_opt.datasets.mps import read_mps

__all__ = ["TEST_FRACTION", "label_files", "mps_files", "split"]

TEST_FRACTION = 0.2


def mps_files(path: Path, what: str) -> list[Path]:
    """The MPS files ``path`` names: itself (a ``.mps`` file) or a folder's ``.mps`` files, sorted; ``what``
    (``"--input"``, ``"--data"``) names the option in the error."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".mps" and p.is_file())
        if not files:
            raise ConfigError(f"{what} {path}: the folder holds no .mps files")
        return files
    if path.suffix.lower() != ".mps" or not path.is_file():
        raise ConfigError(f"{what} {path}: the opt domain reads an .mps file or a folder of .mps files")
    return [path]


def _solve_file(path: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    """GLOP's optimum of the MPS file ``path`` (runs in a worker); a ValueError naming it unless optimal."""
    result = solve_glop(read_mps(path))
    if result.status != "optimal":
        raise ValueError(f"--data: GLOP finds {path} {result.status}; training needs LPs with an optimum")
    return result.x, result.y, result.objective, result.seconds


def label_files(
    folder: Path, workers: int | None = None, cache: Path | None = None
) -> tuple[list[str], LabelledSet]:
    """The names and GLOP-labelled LPs of the MPS files of ``folder`` (cached by their contents)."""
    paths = mps_files(Path(folder), "--data")
    if len(paths) < 2:
        raise ConfigError(f"--data {folder}: training needs at least 2 LPs (one for the test set), got 1")
    lps = [read_mps(path) for path in paths]
    for path, lp in zip(paths, lps, strict=True):
        if lp.shape != lps[0].shape:
            raise ConfigError(
                f"--data: {path} has {lp.num_rows} rows x {lp.num_cols} columns, {paths[0].name} has "
                f"{lps[0].num_rows} x {lps[0].num_cols}; the models take LPs of one shape"
            )
    names = [path.stem for path in paths]
    digest = hashlib.sha256(json.dumps([sha256(path) for path in paths]).encode()).hexdigest()[:24]
    target = (cache_dir() if cache is None else Path(cache)) / f"mps-{digest}.npz"
    if target.is_file():
        with np.load(target) as data:
            return names, LabelledSet(lps, data["x"], data["y"], data["objective"], data["seconds"])
    try:  # before the labelling, so that a bad location fails at once
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the GLOP label cache {target.parent} ({err.strerror})") from err
    files = [str(path) for path in paths]
    if workers == 1:
        results = [_solve_file(file) for file in files]
    else:
        results = map_chunks(_solve_file, files, workers=workers, desc="GLOP labels")
    x, y, objective, seconds = (np.array([r[i] for r in results]) for i in range(4))
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y, objective=objective, seconds=seconds)
    atomic_write(target, buffer.getvalue())
    return names, LabelledSet(lps, x, y, objective, seconds)


def _take(data: LabelledSet, index: np.ndarray) -> LabelledSet:
    """The instances ``index`` of ``data``."""
    return LabelledSet(
        [data.lps[i] for i in index], data.x[index], data.y[index], data.objective[index], data.seconds[index]
    )


def split(names: list[str], data: LabelledSet, seed: int) -> tuple[LabelledSet, LabelledSet, list[str]]:
    """``(train, test, test names)``: a seeded shuffle, :data:`TEST_FRACTION` (at least one) for testing."""
    order = np.random.default_rng(seed).permutation(len(names))
    n_test = max(1, round(TEST_FRACTION * len(names)))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return _take(data, train), _take(data, test), [names[i] for i in test]
