"""LP data model."""

from deq_opt.operators.lp import LinearProgram

__all__ = ["LinearProgram"]
