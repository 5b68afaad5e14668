"""A toy linear-inverse domain for testing the ``deq`` CLI and deq-core's scaling analysis."""
