"""Run deq-core's conformance suite against each installed backend."""

from deq_core.testing.suite import *  # noqa: F403
