"""Classical LP solvers: OR-Tools GLOP and PDLP, and our own restarted PDHG (``deq_opt.baselines.pdhg``)."""

from deq_opt.baselines.ortools_lp import solve_glop, solve_pdlp
from deq_opt.baselines.result import LPResult

__all__ = ["LPResult", "solve_glop", "solve_pdlp"]
