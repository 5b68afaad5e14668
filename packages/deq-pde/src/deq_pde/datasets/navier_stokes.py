"""Steady Navier-Stokes datasets: GRF forcing -> steady vorticity at nu = 0.01 on the periodic unit square.

The forcing of the vorticity equation is ``amplitude`` times the periodic Gaussian random field
``N(0, (-Lap + tau^2)^-alpha)`` with ``alpha = 2.5``, ``tau = 7`` (:func:`periodic_random_field`): the
field the FNO Navier-Stokes benchmarks draw (Li et al. 2021), which the research's steady-state set follows
(a random forcing field mapped to its steady solution), rather than Kolmogorov forcing, whose handful of
random modes would make the operator nearly finite-dimensional. ``amplitude = 10`` puts the flow well past
the Stokes regime (the advection term moves the solution by about half its norm). Each sample is solved by
:func:`deq_pde.operators.navier_stokes.solve` on the ``solver_grid`` and subsampled to ``grid_size``; its
discrete residual ``max |R|`` is stored and must be ``<= check``, else the sample is an error.
"""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from deq_pde.datasets import store
from deq_pde.operators.navier_stokes import SteadyNavierStokes, periodic_random_field, residual_norm, solve

KIND = "navier-stokes"


@dataclass(frozen=True)
class NavierStokesConfig:
    """Steady Navier-Stokes data settings: grids, viscosity, forcing GRF and amplitude, Newton tolerances."""

    grid_size: int = 64
    solver_grid: int | None = None
    nu: float = 0.01
    alpha: float = 2.5
    tau: float = 7.0
    amplitude: float = 10.0
    seed: int = 0
    chunk_size: int = 16
    tol: float = 1e-10
    check: float = 1e-8

    def __post_init__(self) -> None:
        if self.grid_size < 4 or self.grid_size % 2:
            raise ValueError(f"grid_size must be an even integer >= 4, got {self.grid_size}")
        if self.solver_grid is not None and (
            self.solver_grid < self.grid_size or self.solver_grid % self.grid_size
        ):
            raise ValueError(
                f"solver_grid must be a multiple of grid_size {self.grid_size}, got {self.solver_grid}"
            )
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        for name in ("nu", "alpha", "tau", "amplitude", "tol", "check"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def fine(self) -> int:
        """The grid the solver runs on (``solver_grid``, by default ``grid_size``)."""
        return self.grid_size if self.solver_grid is None else self.solver_grid


@lru_cache(maxsize=4)
def navier_stokes_setup(config: NavierStokesConfig) -> SteadyNavierStokes:
    """The discrete problem on the solver grid, built once per process."""
    return SteadyNavierStokes(config.fine, config.nu)


def navier_stokes_sample(config: NavierStokesConfig, index: int) -> dict[str, np.ndarray]:
    """Sample ``index``: forcing and steady vorticity on the grid, the residual and Newton's step count.

    A sample whose Newton solve misses ``check`` raises a RuntimeError naming it (it is never kept).
    """
    problem = navier_stokes_setup(config)
    rng = np.random.default_rng([config.seed, index])
    forcing = config.amplitude * periodic_random_field(rng, config.fine, config.alpha, config.tau)
    result = solve(problem, forcing, tol=config.tol)
    residual = residual_norm(problem, result.solution, forcing)
    if not residual <= config.check:
        raise RuntimeError(
            f"navier-stokes sample {index} (seed {config.seed}): Newton-Krylov stopped at residual "
            f"max |R| = {residual:.2e} > {config.check:.0e} after {result.iterations} steps"
        )
    step = config.fine // config.grid_size
    return {
        "forcing": forcing[::step, ::step],
        "solution": result.solution[::step, ::step],
        "residual": np.asarray(residual),
        "newton_steps": np.asarray(result.iterations),
    }


def navier_stokes_chunk(config: dict, start: int, stop: int) -> dict[str, np.ndarray]:
    """Samples ``[start, stop)`` stacked per key (the unit of work sent to an executor)."""
    cfg = NavierStokesConfig(**config)
    return store.stack_samples([navier_stokes_sample(cfg, i) for i in range(start, stop)])


def generate_navier_stokes(
    folder: str | Path,
    num_samples: int,
    config: NavierStokesConfig | None = None,
    executor: cf.Executor | None = None,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Generate (or resume) ``num_samples`` steady Navier-Stokes samples into ``folder`` on an Executor."""
    config = NavierStokesConfig() if config is None else config
    return store.generate(
        folder,
        KIND,
        asdict(config),
        navier_stokes_chunk,
        num_samples,
        config.chunk_size,
        executor,
        workers,
        progress,
    )


def load_navier_stokes(folder: str | Path, num_samples: int | None = None) -> tuple[np.ndarray, ...]:
    """``(forcing, solution, residual)``: grids (N, n, n) and residuals (N,) from a generated folder."""
    return store.load(folder, ("forcing", "solution", "residual"), num_samples, kind=KIND)
