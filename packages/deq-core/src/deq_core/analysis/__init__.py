"""Backend-free parts of the scaling analysis: budget lists, the ``report.json`` schema, table and plot.

The backend parts (iterating a model for exactly ``t`` steps, the Lipschitz estimators) live in
:mod:`deq_core.torch.analysis` and :mod:`deq_core.jax.analysis`; see ``docs/scaling.md``.
"""

from deq_core.analysis.budgets import check_budgets, geometric_budgets
from deq_core.analysis.lipschitz import summarize_ratios
from deq_core.analysis.report import (
    ReportError,
    build_report,
    package_versions,
    validate_report,
    write_report,
)
from deq_core.analysis.table import format_table

__all__ = [
    "ReportError",
    "build_report",
    "check_budgets",
    "format_table",
    "geometric_budgets",
    "package_versions",
    "summarize_ratios",
    "validate_report",
    "write_report",
]
