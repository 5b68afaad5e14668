"""``deq predict`` for LP models: MPS files in, predicted solutions out, with PDLP warm-started vs cold.

The input is one ``.mps`` file or a folder of them (free MPS format), all of the model's ``m`` x ``n``
shape. For each instance ``NAME.mps`` the prediction is written to ``OUT/solutions/NAME.npz`` (``x``,
``y``) and its row reports the objective, the primal and dual infeasibility and the PDLP iterations from a
cold start and from the prediction. ``--reference`` gives the optimal solutions, as ``.npz`` files with
``x`` and ``y`` (a folder with ``NAME.npz`` per instance, or one file for one input): the rows then also
hold the errors the run's report averages (``primal_error`` is its quality metric).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.files import atomic_write
from deq_opt.baselines.ortools_lp import solve_pdlp
from deq_opt.datasets.mps import read_mps
from deq_opt.evaluation.metrics import dual_infeasibility, primal_infeasibility, solution_metrics
from deq_opt.evaluation.own_data import mps_files
from deq_opt.models.files import ITERATION_LIMIT, OptModel
from deq_opt.operators.lp import LinearProgram

__all__ = ["predict", "read_reference"]


def read_reference(reference: Path, inputs: list[Path], lp: LinearProgram, k: int) -> tuple[Any, Any]:
    """The optimum ``(x, y)`` of input ``k`` in ``reference`` (a folder of ``NAME.npz``, or one ``.npz``)."""
    if reference.is_dir():
        path = reference / f"{inputs[k].stem}.npz"
    elif len(inputs) == 1 and reference.suffix == ".npz":
        path = reference
    else:
        raise ValueError(
            f"--reference {reference}: give a folder with NAME.npz (x, y) per input NAME.mps, "
            "or one .npz file when the input is one file"
        )
    if not path.is_file():
        raise ValueError(f"--reference: {path} is missing (the optimum of {inputs[k].name})")
    with np.load(path) as data:
        if not {"x", "y"} <= set(data.files):
            raise ValueError(f"--reference {path} must hold arrays x and y, has {sorted(data.files)}")
        x, y = np.asarray(data["x"], np.float64), np.asarray(data["y"], np.float64)
    if x.shape != (lp.num_cols,) or y.shape != (lp.num_rows,):
        raise ValueError(
            f"--reference {path}: x {x.shape} and y {y.shape} do not fit {inputs[k].name} "
            f"({lp.num_cols} columns, {lp.num_rows} rows)"
        )
    return x, y


def _save(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """``x`` and ``y`` as one ``.npz``, written atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    atomic_write(path, buffer.getvalue())


def predict(
    model: OptModel, input: Path, out_dir: Path, steps: int | None = None, reference: Path | None = None
) -> dict[str, Any]:
    """Apply ``model`` to the MPS files of ``input``; write ``out_dir/solutions/NAME.npz``; one row each."""
    budget = model.budget(steps)
    inputs = mps_files(Path(input), "--input")
    lps = [read_mps(path) for path in inputs]
    m, n = model.shape
    for path, lp in zip(inputs, lps, strict=True):
        if lp.shape != model.shape:
            raise ValueError(
                f"{path} has {lp.num_rows} rows x {lp.num_cols} columns; the model takes {m} x {n} LPs"
            )
    optima = (
        None
        if reference is None
        else [read_reference(Path(reference), inputs, lp, k) for k, lp in enumerate(lps)]
    )
    x, y = model(lps, budget)
    tol = model.manifest["apply"]["pdlp_tolerance"]
    (out_dir / "solutions").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (path, lp) in enumerate(zip(inputs, lps, strict=True)):
        _save(out_dir / "solutions" / f"{path.stem}.npz", x[k], y[k])
        cold = solve_pdlp(lp, tol=tol, iteration_limit=ITERATION_LIMIT)
        warm = solve_pdlp(lp, tol=tol, iteration_limit=ITERATION_LIMIT, x0=x[k], y0=y[k])
        row = {
            "instance": path.stem,
            "objective": lp.user_objective(lp.objective(x[k])),
            "primal_infeasibility": primal_infeasibility(lp, x[k]),
            "dual_infeasibility": dual_infeasibility(lp, y[k]),
            "pdlp_cold_iterations": cold.iterations,
            "pdlp_warm_iterations": warm.iterations,
            "pdlp_warm_status": warm.status,
        }
        if optima is not None:
            metrics = solution_metrics(
                [lp], x[k : k + 1], y[k : k + 1], optima[k][0][None], optima[k][1][None]
            )
            row |= {key: metrics[key] for key in ("primal_error", "dual_error", "objective_gap")}
        rows.append(row)
    return {
        "model": model.manifest["name"],
        "task": model.manifest["task"],
        "steps": budget,
        "pdlp_tolerance": tol,
        "solutions": str(out_dir / "solutions"),
        "rows": rows,
    }
