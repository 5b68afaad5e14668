"""Implicit reconstruction models: DEQ-HQS and DEQ-PGD with a residual CNN denoiser, and their explicit twin.

:mod:`~deq_imaging.models.cells` and :mod:`~deq_imaging.models.networks` hold their math, written once;
:mod:`deq_imaging.models.torch` (PyTorch) and :mod:`deq_imaging.models.jax` (Equinox) make them modules.
"""
