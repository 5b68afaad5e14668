"""Errors raised by deq-core: bad configuration, unusable checkpoints, and non-convergence when asked for."""


class ConfigError(ValueError):
    """A configuration value is invalid (solve options, a training run, analysis budgets, a domain plugin).

    The message names the field. A ``ValueError``, so code that catches those keeps working.
    """


class CheckpointError(ValueError):
    """A checkpoint cannot be used: a file is missing, damaged, from another step, or does not fit the model.

    The message names the file.
    """


class ModelFileError(ValueError):
    """A model folder cannot be used: missing, not a deq model, of another format, damaged, or of no domain.

    The message names the path and what to do.
    """


class ConvergenceError(RuntimeError):
    """A fixed-point solve did not converge for some samples (raised only with ``throw=True``)."""
