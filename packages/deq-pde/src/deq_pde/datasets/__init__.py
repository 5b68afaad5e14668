"""Datasets: cached, resumable, parallel generation of PDE samples and their loaders."""

from deq_pde.datasets.darcy import DarcyConfig, darcy_sample, generate_darcy, load_darcy

__all__ = ["DarcyConfig", "darcy_sample", "generate_darcy", "load_darcy"]
