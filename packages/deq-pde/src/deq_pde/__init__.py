"""Scientific-computing domain of deq: finite elements, PDE problems, classical solvers, datasets."""

__version__ = "0.1.0"
