"""Your own fields: ``deq run pde --task T --data FILE.npz`` trains and tests on them.

``FILE.npz`` holds the task's input fields (B, n, n) on the n x n grid of the unit square (entry ``[i, j]``
at ``(x_j, y_i) = (j, i) / (n - 1)``) as ``coefficient`` (darcy) or ``forcing`` (nonlinear), and optionally
their ``solution`` (B, n, n). Without solutions our FEM solver labels them on the task's mesh: darcy
interpolates the grid coefficient bilinearly to the quadrature points (finite and positive) and solves
``-div(a grad u) = 1`` directly; nonlinear solves ``-div((1 + u^2) grad u) = f`` by Newton. Labels are
cached like generated data (a folder named by the file's SHA-256 and the settings), so a rerun reuses them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from deq_pde.baselines.nonlinear import newton
from deq_pde.datasets import store
from deq_pde.datasets.darcy import SOLVERS, DarcyConfig, darcy_setup
from deq_pde.datasets.nonlinear import NonlinearConfig, nonlinear_problem, nonlinear_setup
from deq_pde.evaluation import classical
from deq_pde.operators.problems import grid_field_at

INPUTS = {"darcy": "coefficient", "nonlinear": "forcing"}
SOLUTION = "solution"


def read_fields(path: str | Path, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(inputs, solutions or None)`` of an own-data ``.npz``; a ValueError names what is wrong with it."""
    path, key = Path(path), INPUTS[task]
    if path.suffix != ".npz" or not path.is_file():
        raise ValueError(
            f"--data {path}: give an .npz file holding {key!r} (B, n, n) and optionally 'solution'"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            if key not in archive.files:
                raise ValueError(f"--data {path} holds {sorted(archive.files)}, no {key!r} array (B, n, n)")
            arrays = {name: archive[name] for name in (key, SOLUTION) if name in archive.files}
    except (OSError, EOFError) as error:
        raise ValueError(f"--data {path} cannot be read as an .npz: {error}") from None
    inputs = _checked(arrays[key], f"--data {path}: {key!r}")
    solutions = arrays.get(SOLUTION)
    if solutions is not None:
        solutions = _checked(solutions, f"--data {path}: 'solution'")
        if solutions.shape != inputs.shape:
            raise ValueError(f"--data {path}: 'solution' has shape {solutions.shape}, {key!r} {inputs.shape}")
    return inputs, solutions


def _checked(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` as float64 if it is finite, real and (B, n, n) with n >= 2, else a ValueError."""
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{what} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[1] != array.shape[2] or array.shape[1] < 2:
        raise ValueError(f"{what} must have shape (B, n, n) with n >= 2, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} holds NaN or infinite values")
    return array.astype(np.float64)


def darcy_runners(config: DarcyConfig, coefficient: np.ndarray) -> dict[str, tuple[classical.Runner, bool]]:
    """:func:`deq_pde.evaluation.classical.darcy_runners` on a grid ``coefficient`` (interpolated to the
    quadrature points once, as :func:`label` does)."""
    problem, _ = darcy_setup(config)
    return classical.darcy_runners(
        config, coefficient=grid_field_at(coefficient, problem.space.quadrature_points)
    )


def label(task: str, data: dict, field: np.ndarray) -> np.ndarray:
    """Our FEM solution on the grid of one input ``field`` of ``task`` (``data``: its data config)."""
    if task == "darcy":
        config = DarcyConfig(**data)
        problem, evaluator = darcy_setup(config)
        matrix, rhs = problem.system(grid_field_at(field, problem.space.quadrature_points))
        u = problem.bc.expand(SOLVERS[config.solver](matrix, rhs).solution)
    else:
        config = NonlinearConfig(**data)
        _, evaluator = nonlinear_setup(config)
        result = newton(nonlinear_problem(config, field), tol=config.tol)
        if not result.converged:
            raise ValueError(f"Newton did not converge (residual {result.residuals[-1]:.2e})")
        u = result.solution
    return evaluator(u).reshape(field.shape)


def label_chunk(config: dict, start: int, stop: int) -> dict[str, np.ndarray]:
    """The FEM labels of fields ``[start, stop)`` of ``config["path"]`` (the unit of work of the cache)."""
    inputs, _ = read_fields(config["path"], config["task"])
    labels = []
    for index in range(start, stop):
        try:
            labels.append(label(config["task"], config["data"], inputs[index]))
        except ValueError as error:
            raise ValueError(f"--data {config['path']}: field {index} cannot be solved: {error}") from None
    return {SOLUTION: np.stack(labels)}


def load_own(
    path: str | Path, task: str, data: DarcyConfig | NonlinearConfig, cache: Path, workers: int, **options
) -> tuple[np.ndarray, np.ndarray, Path | None]:
    """``(inputs, solutions, label folder or None)`` of the own-data file ``path``, labelled when needed.

    ``options`` go to :func:`deq_pde.datasets.store.generate` (``executor``, ``progress``).
    """
    inputs, solutions = read_fields(path, task)
    if inputs.shape[-1] != data.grid_size:
        raise ValueError(
            f"--data {path} holds {inputs.shape[-1]}x{inputs.shape[-1]} fields but grid_size is "
            f"{data.grid_size}; run with --set grid_size={inputs.shape[-1]}"
        )
    if solutions is not None:
        return inputs, solutions, None
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    config = {"task": task, "path": str(Path(path).resolve()), "sha256": digest, "data": asdict(data)}
    config["chunk_size"] = data.chunk_size
    folder = cache / f"{task}-own-{store.config_hash(config)[:12]}"
    n = inputs.shape[0]
    store.generate(folder, f"own-{task}", config, label_chunk, n, data.chunk_size, workers=workers, **options)
    return inputs, store.load(folder, (SOLUTION,), n)[0], folder
