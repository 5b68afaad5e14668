"""Implicit reconstruction models: DEQ-HQS and DEQ-PGD with a residual CNN denoiser, and their explicit twin.

:mod:`deq_imaging.models.torch` (PyTorch) and :mod:`deq_imaging.models.jax` (Equinox) hold the same models.
"""
