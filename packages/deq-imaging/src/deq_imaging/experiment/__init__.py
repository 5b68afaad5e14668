"""The ``deq run imaging`` experiment: configuration, problems, training bank, baselines, backend pipelines.

Backend-free pieces (numpy) are :mod:`config`, :mod:`problem`, :mod:`bank` and :mod:`classical`;
:mod:`deq_imaging.experiment.torch` and :mod:`deq_imaging.experiment.jax` train and evaluate the models.
"""

from deq_imaging.experiment.bank import PatchBank
from deq_imaging.experiment.config import TASKS, ImagingConfig, default_config
from deq_imaging.experiment.problem import OperatorSpec, Problem, make_problem

__all__ = ["TASKS", "ImagingConfig", "OperatorSpec", "PatchBank", "Problem", "default_config", "make_problem"]
