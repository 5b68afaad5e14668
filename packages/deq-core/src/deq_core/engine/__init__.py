"""The solver algorithms, written once against a small array interface (:class:`Ops`).

Each backend supplies an ``Ops`` (``deq_core/torch/ops.py``, ``deq_core/jax/ops.py``) and runs the very
same iteration: there is one Anderson, one Broyden, one GMRES and one loop for both frameworks.
"""

from deq_core.engine.loop import LoopResult, iterate
from deq_core.engine.ops import Ops
from deq_core.engine.solvers import make_solver

__all__ = ["LoopResult", "Ops", "iterate", "make_solver"]
