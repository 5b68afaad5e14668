"""deq-core for JAX/Equinox: :func:`fixed_point` and the :class:`DEQ` module."""

import jax as _jax

from deq_core.jax.deq import DEQ
from deq_core.jax.solve import fixed_point
from deq_core.solution import Solution, Stats

for _cls in (Stats, Solution):
    _fields = [f for f in _cls.__dataclass_fields__]
    _jax.tree_util.register_dataclass(_cls, data_fields=_fields, meta_fields=[])

__all__ = ["DEQ", "fixed_point"]
