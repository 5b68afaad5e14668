"""Training of the imaging models: the warm-started patch bank (numpy) and one trainer module per backend.

:mod:`~deq_imaging.models.training.bank` holds the bank of clean patches and their measurements;
:mod:`~deq_imaging.models.training.torch` and :mod:`~deq_imaging.models.training.jax` fit the implicit model
on it (cached iterates, a few no-grad iterations and one gradient step per visit) and the explicit twin.
"""
