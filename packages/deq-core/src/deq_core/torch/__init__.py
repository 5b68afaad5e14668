"""deq-core for PyTorch: :func:`fixed_point` and the :class:`DEQ` module."""

from deq_core.torch.deq import DEQ
from deq_core.torch.solve import fixed_point

__all__ = ["DEQ", "fixed_point"]
