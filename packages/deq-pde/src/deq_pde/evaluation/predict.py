"""``deq predict`` for pde models: grid fields from ``.npy``/``.npz`` -> solutions, figure, rel. L2 per field.

The input is one ``.npy`` array (B, n, n) of the model's input fields (the Darcy coefficient or the
nonlinear forcing), or an ``.npz`` holding it under that name (or as its only array). The reference
solutions come from ``--reference`` (``.npy``, or ``.npz`` with ``solution`` or one array), else from the
input ``.npz``'s ``solution`` array when it has one (coefficient/solution pairs); with them every row gets
its relative L2 error (the report's metric) and ``samples.png`` shows input | FEM solution | prediction |
error for the first fields.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.files import atomic_path
from deq_pde.evaluation.figures import plot_predictions
from deq_pde.models.files import PDEModel
from deq_pde.models.fourier import relative_l2

SOLUTIONS = "solutions.npy"
FIGURE = "samples.png"
FIGURE_SAMPLES = 3
REFERENCE_KEY = "solution"


def read_fields(path: Path, key: str, what: str, only: bool = True) -> np.ndarray | None:
    """The array of the ``.npy`` file ``path``, or the ``key`` array of the ``.npz`` ``path`` (with ``only``,
    also its one array under another name).

    ``None`` for an ``.npz`` without it; a ValueError names a file that is no ``.npy``/``.npz`` or cannot
    be read.
    """
    path = Path(path)
    if path.suffix not in (".npy", ".npz") or not path.is_file():
        kind = (
            "a folder"
            if path.is_dir()
            else "missing"
            if not path.exists()
            else f"a {path.suffix or 'plain'} file"
        )
        raise ValueError(f"{what} {path} is {kind}; give one .npy array (B, n, n) or an .npz holding it")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if key in names or (only and len(names) == 1):
                return archive[key if key in names else names[0]]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{what} {path} cannot be read as numpy data: {error}") from None
    return None


def predict(
    model: PDEModel, input: Path, out_dir: Path, steps: int | None = None, reference: Path | None = None
) -> dict[str, Any]:
    """Apply ``model`` to the fields of ``input``; write ``solutions.npy`` (and ``samples.png`` when
    reference solutions are known); one row per field with its relative L2 error against them."""
    name = model.input_name
    inputs = read_fields(input, name, "--input")
    if inputs is None:
        raise ValueError(f"--input {input} holds no {name!r} array (and more than one array)")
    source = (
        f"--reference {reference}" if reference is not None else f"the {REFERENCE_KEY!r} array of {input}"
    )
    if reference is not None:
        truth = read_fields(reference, REFERENCE_KEY, "--reference")
        if truth is None:
            raise ValueError(f"--reference {reference} holds no {REFERENCE_KEY!r} array (and more than one)")
    else:
        truth = (
            read_fields(input, REFERENCE_KEY, "--input", only=False) if Path(input).suffix == ".npz" else None
        )
    budget = model.budget(steps)
    solutions = model(inputs, budget)
    with atomic_path(Path(out_dir) / SOLUTIONS) as temporary, open(temporary, "wb") as handle:
        np.save(handle, solutions)
    rows: list[dict[str, Any]] = [
        {"index": i, "min": float(u.min()), "max": float(u.max())} for i, u in enumerate(solutions)
    ]
    result: dict[str, Any] = {
        "model": model.name,
        "task": model.task,
        "steps": budget,
        "solutions": SOLUTIONS,
    }
    if truth is not None:
        truth = np.asarray(truth, dtype=np.float64)
        if truth.shape != solutions.shape:
            raise ValueError(f"{source} has shape {truth.shape}, the solutions {solutions.shape}")
        errors = relative_l2(solutions.astype(np.float64), truth)
        for row, error in zip(rows, errors, strict=True):
            row["rel_l2"] = float(error)
        shown = slice(0, FIGURE_SAMPLES)
        label = f"FNO-DEQ ({budget} it.)" if model.implicit else model.name
        plot_predictions(Path(out_dir) / FIGURE, inputs[shown], truth[shown], solutions[shown], name, label)
        result |= {"reference": source, "rel_l2": float(np.mean(errors)), "figure": FIGURE}
    return result | {"rows": rows}
