"""Darcy-flow datasets (neural-operator benchmark): thresholded GRF coefficient -> FEM solution on a grid."""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from deq_pde.baselines.linear import cg_amg, direct
from deq_pde.datasets import store
from deq_pde.operators.evaluate import PointEvaluator, grid_points
from deq_pde.operators.mesh import unit_square
from deq_pde.operators.problems import DarcyProblem, gaussian_random_field, threshold
from deq_pde.operators.space import FunctionSpace

KIND = "darcy"
SOLVERS = {"direct": direct, "cg_amg": cg_amg}


@dataclass(frozen=True)
class DarcyConfig:
    """Darcy data settings: grid/mesh resolution, degree, GRF and threshold parameters, seed, chunking."""

    grid_size: int = 33
    mesh_cells: int | None = None
    degree: int = 1
    alpha: float = 2.0
    tau: float = 3.0
    high: float = 12.0
    low: float = 3.0
    seed: int = 0
    chunk_size: int = 16
    solver: str = "direct"

    def __post_init__(self) -> None:
        if self.grid_size < 2:
            raise ValueError(f"grid_size must be >= 2, got {self.grid_size}")
        if self.mesh_cells is not None and self.mesh_cells < 1:
            raise ValueError(f"mesh_cells must be >= 1, got {self.mesh_cells}")
        if self.degree not in (1, 2):
            raise ValueError(f"degree must be 1 or 2, got {self.degree}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {self.solver!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")

    @property
    def cells_per_side(self) -> int:
        """Mesh cells per side (default: one per grid interval)."""
        return self.grid_size - 1 if self.mesh_cells is None else self.mesh_cells


@lru_cache(maxsize=4)
def darcy_setup(config: DarcyConfig) -> tuple[DarcyProblem, PointEvaluator]:
    """Problem and grid evaluator for ``config``, built once per process."""
    space = FunctionSpace(unit_square(config.cells_per_side), config.degree)
    return DarcyProblem(space, 1.0, config.high, config.low), PointEvaluator(
        space, grid_points(config.grid_size)
    )


def darcy_sample(config: DarcyConfig, index: int) -> dict[str, np.ndarray]:
    """Sample ``index``: raw field, coefficient and solution on the grid, and the FEM solution vector."""
    problem, evaluator = darcy_setup(config)
    rng = np.random.default_rng([config.seed, index])
    field = gaussian_random_field(rng, config.grid_size, config.alpha, config.tau)
    matrix, rhs = problem.system(problem.coefficient(field))
    u = problem.bc.expand(SOLVERS[config.solver](matrix, rhs).solution)
    n = config.grid_size
    return {
        "field": field,
        "coefficient": threshold(field, config.high, config.low),
        "solution": evaluator(u).reshape(n, n),
        "solution_dofs": u,
    }


def darcy_chunk(config: dict, start: int, stop: int) -> dict[str, np.ndarray]:
    """Samples ``[start, stop)`` stacked per key (the unit of work sent to an executor)."""
    cfg = DarcyConfig(**config)
    return store.stack_samples([darcy_sample(cfg, i) for i in range(start, stop)])


def generate_darcy(
    folder: str | Path,
    num_samples: int,
    config: DarcyConfig | None = None,
    executor: cf.Executor | None = None,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Generate (or resume) ``num_samples`` Darcy samples into ``folder`` on any ``Executor``."""
    config = DarcyConfig() if config is None else config
    return store.generate(
        folder, KIND, asdict(config), darcy_chunk, num_samples, config.chunk_size, executor, workers, progress
    )


def load_darcy(folder: str | Path, num_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(coefficient, solution)`` grids, each (N, n, n) float64, from a generated folder."""
    if store.read_manifest(folder).get("kind") != KIND:
        raise ValueError(f"{folder} does not hold a {KIND!r} dataset")
    return store.load(folder, ("coefficient", "solution"), num_samples)
