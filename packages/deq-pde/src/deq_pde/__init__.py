"""Scientific-computing domain of deq: finite elements, PDE problems, classical solvers, datasets, FNO-DEQs.

``deq_pde.load_model(path)`` loads a model folder that ``deq run pde`` wrote (``OUT/models/NAME``);
the result maps grid fields (B, n, n) to solutions: ``model(coefficient, steps=None)``.
"""

from deq_pde.models.files import PDEModel, load_model

__version__ = "0.1.0"

__all__ = ["PDEModel", "__version__", "load_model"]
