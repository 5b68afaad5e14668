"""Our restarted PDHG (PDLP-style) for LPs: numpy preprocessing, the iteration written once over an array
namespace (``iteration``), one thin module per backend.

Import the backend you have: ``deq_opt.baselines.pdhg.torch.solve_pdhg_torch``,
``deq_opt.baselines.pdhg.jax.solve_pdhg_jax`` or the numpy reference
``deq_opt.baselines.pdhg.reference.solve_pdhg_numpy``.
"""

from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP, prepare, spectral_norm

__all__ = ["PDHGOptions", "ScaledLP", "prepare", "spectral_norm"]
