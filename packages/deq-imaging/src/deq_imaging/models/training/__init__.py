"""Training of the imaging models: the warm-started patch bank (numpy) and the recipes run by deq-core's fit.

:mod:`~deq_imaging.models.training.bank` holds the bank of clean patches and their measurements;
:mod:`~deq_imaging.models.training.recipe` fits the implicit model on it (warm-started iterates, a few
gradient-free iterations and one gradient step per visit) and the explicit twin, on any backend.
"""
