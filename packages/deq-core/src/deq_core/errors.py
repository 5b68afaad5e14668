"""Errors raised by deq-core: bad configuration, and non-convergence when the caller asks for it."""


class ConfigError(ValueError):
    """A solver, backward or stopping configuration is invalid; the message names the field."""


class ConvergenceError(RuntimeError):
    """A fixed-point solve did not converge for some samples (raised only with ``throw=True``)."""
