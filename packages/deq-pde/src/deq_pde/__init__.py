"""Scientific-computing domain of deq: finite elements, PDE problems, classical solvers, datasets, FNO-DEQs.

``deq_pde.load_model(path)`` loads a model folder that ``deq run pde`` wrote (``OUT/models/NAME``);
the result maps grid fields (B, n, n) to solutions: ``model(coefficient, steps=None)``.
``deq_pde.pretrained("darcy")`` loads the shipped pretrained Darcy FNO-DEQ the same way.
"""

from deq_pde.models.files import PDEModel, load_model
from deq_pde.pretrained import pretrained

__version__ = "0.1.0"

__all__ = ["PDEModel", "__version__", "load_model", "pretrained"]
