"""Our restarted PDHG (PDLP-style) for LPs: numpy preprocessing, one thin module per backend.

Import the backend you have: ``deq_opt.baselines.pdhg.torch.solve_pdhg_torch`` or
``deq_opt.baselines.pdhg.jax.solve_pdhg_jax``.
"""

from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP, prepare, spectral_norm

__all__ = ["PDHGOptions", "ScaledLP", "prepare", "spectral_norm"]
