"""Datasets: cached, resumable, parallel generation of PDE samples and their loaders."""

from deq_pde.datasets.darcy import DarcyConfig, darcy_sample, darcy_setup, generate_darcy, load_darcy
from deq_pde.datasets.nonlinear import (
    NonlinearConfig,
    generate_nonlinear,
    load_nonlinear,
    nonlinear_problem,
    nonlinear_sample,
    nonlinear_setup,
)

__all__ = [
    "DarcyConfig",
    "NonlinearConfig",
    "darcy_sample",
    "darcy_setup",
    "generate_darcy",
    "generate_nonlinear",
    "load_darcy",
    "load_nonlinear",
    "nonlinear_problem",
    "nonlinear_sample",
    "nonlinear_setup",
]
