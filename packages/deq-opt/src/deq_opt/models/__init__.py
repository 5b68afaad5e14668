"""LP models: graph inputs and hyper-parameters (numpy); the networks live in ``torch.py`` and ``jax.py``."""

from deq_opt.models.graphs import GraphBatch, Scales, decode, featurize, fit_scales
from deq_opt.models.spec import ModelSpec, explicit_params, gnn_params, matching_width, pdhg_params

__all__ = [
    "GraphBatch",
    "ModelSpec",
    "Scales",
    "decode",
    "explicit_params",
    "featurize",
    "fit_scales",
    "gnn_params",
    "matching_width",
    "pdhg_params",
]
