"""Neural operators on the grid: FNO-DEQ (a weight-tied Fourier layer at its fixed point) and explicit FNOs.

The architectures and their trainers live in one module per backend, imported explicitly:
``deq_pde.models.torch`` (PyTorch) and ``deq_pde.models.jax`` (JAX/Equinox). Both share the settings below.
"""

from deq_pde.models.settings import ModelSettings, TrainSettings, grid_channels

__all__ = ["ModelSettings", "TrainSettings", "grid_channels"]
