"""The pretrained LP models deq-opt ships: ``pretrained/NAME-BACKEND/`` model folders with a ``CARD.md``.

``random-lp-torch`` and ``random-lp-jax`` are the learned PDHG of ``deq run opt --task random-lp --quick``
(made by ``benchmarks/train_pretrained.py``). Each card ends in a JSON block: the recipe of a small subset
of the model's test set and the metrics the model scored on it, which the tests re-check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deq_core.model_files import load_model, read_card, shipped
from deq_opt.datasets.labels import label
from deq_opt.evaluation.metrics import solution_metrics

__all__ = ["folder", "pretrained", "read_card", "subset_metrics"]


def folder(name: str, backend: str) -> Path:
    """The shipped model folder ``NAME-BACKEND`` (the plugin's ``pretrained`` hook), else ModelFileError."""
    return shipped("deq_opt", name, backend)


def pretrained(name: str, backend: str | None = None, device: str | None = None) -> Any:
    """The shipped model ``name`` (e.g. ``"random-lp"``) loaded as an :class:`~deq_opt.models.files.OptModel`
    in ``backend`` (default: ``$DEQ_BACKEND``, else one installed) on ``device``."""
    return load_model(f"pretrained:opt/{name}", device, backend)


def subset_metrics(model: Any, recipe: dict[str, Any], cache: Path | None = None) -> dict[str, float]:
    """:func:`~deq_opt.evaluation.metrics.solution_metrics` of ``model`` at its own budget on the LPs of
    ``recipe`` (``generator``, ``params``, ``count``, ``seed``), labelled by GLOP into ``cache``."""
    generator, params, count, seed = (recipe[key] for key in ("generator", "params", "count", "seed"))
    lps = label(generator, params, count, seed, cache=cache, workers=1, progress=False)
    x, y = model(lps.lps)
    return solution_metrics(lps.lps, x, y, lps.x, lps.y)
