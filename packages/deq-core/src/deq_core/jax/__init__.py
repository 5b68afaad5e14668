"""deq-core for JAX/Equinox: :func:`fixed_point` and the :class:`DEQ` module."""

import jax as _jax

from deq_core.jax.deq import DEQ
from deq_core.jax.solve import fixed_point
from deq_core.solution import Solution, Stats

_jax.tree_util.register_dataclass(Stats, data_fields=list(Stats.__dataclass_fields__), meta_fields=[])
_jax.tree_util.register_dataclass(Solution, data_fields=["value", "stats", "result"], meta_fields=["adjoint"])

__all__ = ["DEQ", "fixed_point"]
