"""Nonlinear-diffusion datasets: smooth random forcing f -> FEM solution of -div((1 + u^2) grad u) = f."""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from deq_pde.baselines.nonlinear import newton
from deq_pde.datasets import store
from deq_pde.operators.evaluate import PointEvaluator, grid_points
from deq_pde.operators.mesh import unit_square
from deq_pde.operators.problems import NonlinearDiffusion, gaussian_random_field, grid_field_at
from deq_pde.operators.space import FunctionSpace

KIND = "nonlinear"


@dataclass(frozen=True)
class NonlinearConfig:
    """Nonlinear-diffusion data settings: grid/mesh resolution, degree, forcing GRF and amplitude, Newton."""

    grid_size: int = 33
    mesh_cells: int | None = None
    degree: int = 1
    alpha: float = 2.5
    tau: float = 3.0
    amplitude: float = 100.0
    seed: int = 0
    chunk_size: int = 16
    tol: float = 1e-10

    def __post_init__(self) -> None:
        if self.grid_size < 2:
            raise ValueError(f"grid_size must be >= 2, got {self.grid_size}")
        if self.mesh_cells is not None and self.mesh_cells < 1:
            raise ValueError(f"mesh_cells must be >= 1, got {self.mesh_cells}")
        if self.degree not in (1, 2):
            raise ValueError(f"degree must be 1 or 2, got {self.degree}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.amplitude <= 0 or self.tol <= 0:
            raise ValueError(f"amplitude and tol must be positive, got {self.amplitude}, {self.tol}")

    @property
    def cells_per_side(self) -> int:
        """Mesh cells per side (default: one per grid interval)."""
        return self.grid_size - 1 if self.mesh_cells is None else self.mesh_cells


@lru_cache(maxsize=4)
def nonlinear_setup(config: NonlinearConfig) -> tuple[FunctionSpace, PointEvaluator]:
    """Space and grid evaluator for ``config``, built once per process."""
    space = FunctionSpace(unit_square(config.cells_per_side), config.degree)
    return space, PointEvaluator(space, grid_points(config.grid_size))


def nonlinear_problem(config: NonlinearConfig, forcing: np.ndarray) -> NonlinearDiffusion:
    """The FEM problem for a forcing given on the ``grid_size`` x ``grid_size`` grid (zero Dirichlet data)."""
    space, _ = nonlinear_setup(config)
    return NonlinearDiffusion(space, grid_field_at(forcing, space.quadrature_points))


def nonlinear_sample(config: NonlinearConfig, index: int) -> dict[str, np.ndarray]:
    """Sample ``index``: forcing and solution on the grid, the FEM solution vector and Newton's step count."""
    _, evaluator = nonlinear_setup(config)
    rng = np.random.default_rng([config.seed, index])
    forcing = config.amplitude * gaussian_random_field(rng, config.grid_size, config.alpha, config.tau)
    result = newton(nonlinear_problem(config, forcing), tol=config.tol)
    if not result.converged:
        raise RuntimeError(
            f"Newton did not converge for nonlinear sample {index} (residual {result.residuals[-1]:.2e})"
        )
    n = config.grid_size
    return {
        "forcing": forcing,
        "solution": evaluator(result.solution).reshape(n, n),
        "solution_dofs": result.solution,
        "newton_steps": np.asarray(result.iterations),
    }


def nonlinear_chunk(config: dict, start: int, stop: int) -> dict[str, np.ndarray]:
    """Samples ``[start, stop)`` stacked per key (the unit of work sent to an executor)."""
    cfg = NonlinearConfig(**config)
    return store.stack_samples([nonlinear_sample(cfg, i) for i in range(start, stop)])


def generate_nonlinear(
    folder: str | Path,
    num_samples: int,
    config: NonlinearConfig | None = None,
    executor: cf.Executor | None = None,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Generate (or resume) ``num_samples`` nonlinear-diffusion samples into ``folder`` on an ``Executor``."""
    config = NonlinearConfig() if config is None else config
    return store.generate(
        folder,
        KIND,
        asdict(config),
        nonlinear_chunk,
        num_samples,
        config.chunk_size,
        executor,
        workers,
        progress,
    )


def load_nonlinear(folder: str | Path, num_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(forcing, solution)`` grids, each (N, n, n) float64, from a generated folder."""
    if store.read_manifest(folder).get("kind") != KIND:
        raise ValueError(f"{folder} does not hold a {KIND!r} dataset")
    return store.load(folder, ("forcing", "solution"), num_samples)
