"""Neural operators on the grid: FNO-DEQ (a weight-tied Fourier layer at its fixed point) and explicit FNOs.

Their math is written once in :mod:`deq_pde.models.fourier` and their training schedule in
:mod:`deq_pde.models.schedule`; the modules holding the parameters live in one module per backend, imported
explicitly: ``deq_pde.models.torch`` (PyTorch) and ``deq_pde.models.jax`` (JAX/Equinox).
"""

from deq_pde.models.settings import ModelSettings, TrainSettings, grid_channels

__all__ = ["ModelSettings", "TrainSettings", "grid_channels"]
