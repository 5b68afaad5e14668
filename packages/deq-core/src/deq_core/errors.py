"""Errors raised by deq-core: bad configuration, unusable checkpoints, and non-convergence when asked for."""


class ConfigError(ValueError):
    """A solver, backward or stopping configuration is invalid; the message names the field."""


class CheckpointError(ValueError):
    """A checkpoint cannot be used: a file is missing, damaged, from another step, or does not fit the model.

    The message names the file.
    """


class ConvergenceError(RuntimeError):
    """A fixed-point solve did not converge for some samples (raised only with ``throw=True``)."""
