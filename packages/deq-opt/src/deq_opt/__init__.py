"""deq-opt: linear programs for deq — MPS files, generators, OR-Tools baselines and restarted PDHG."""

from deq_opt.operators.lp import LinearProgram

__all__ = ["LinearProgram"]
__version__ = "0.1.0"
