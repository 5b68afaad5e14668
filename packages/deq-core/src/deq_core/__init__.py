"""deq-core: one fixed-point engine for implicit (deep equilibrium) models, in PyTorch and JAX/Equinox.

This top-level package imports no framework. Use :mod:`deq_core.torch` or :mod:`deq_core.jax` for the
solvers; the configs, result types and errors here are shared by both.
"""

from deq_core.config import (
    GMRES,
    JFB,
    Anderson,
    Broyden,
    Implicit,
    Phantom,
    Picard,
    Reversible,
    SolveOptions,
    Stop,
    Unroll,
    solve_options,
)
from deq_core.errors import ConfigError, ConvergenceError, ModelFileError
from deq_core.model_files import load_model
from deq_core.solution import AdjointStats, Result, Solution, Stats

__version__ = "0.1.0"

__all__ = [
    "AdjointStats",
    "GMRES",
    "JFB",
    "Anderson",
    "Broyden",
    "ConfigError",
    "ConvergenceError",
    "Implicit",
    "ModelFileError",
    "Phantom",
    "Picard",
    "Result",
    "Reversible",
    "Solution",
    "SolveOptions",
    "Stats",
    "Stop",
    "Unroll",
    "load_model",
    "solve_options",
]
