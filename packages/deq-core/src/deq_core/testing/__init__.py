"""The conformance suite every backend of deq-core runs: one catalogue of problems, one set of checks.

Run it from a backend's venv with ``pytest packages/deq-core/tests`` (the ``backend`` fixture picks the
installed framework). :mod:`~deq_core.testing.problems` holds the catalogue with numpy references,
:mod:`~deq_core.testing.backends` the thin per-framework adapters, :mod:`~deq_core.testing.suite` the checks.
"""
