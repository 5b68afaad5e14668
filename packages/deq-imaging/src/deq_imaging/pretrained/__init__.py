"""The pretrained imaging models deq-imaging ships: ``pretrained/NAME-BACKEND/`` model folders with a
``CARD.md``.

Each is the DEQ (``implicit``) of ``deq run imaging --task NAME --quick`` (made by
``benchmarks/train_pretrained.py``; see its card for the exact command). Each card ends in a JSON block: the
recipe of a small subset of the model's test set (the first test images of the run's problem, rebuilt by
:func:`subset`) and the PSNR the model scored on it, which the tests re-check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deq_core.model_files import load_model, read_card, shipped

__all__ = ["folder", "pretrained", "read_card", "subset", "subset_metrics"]


def folder(name: str, backend: str) -> Path:
    """The shipped model folder ``NAME-BACKEND`` (the plugin's ``pretrained`` hook), else ModelFileError."""
    return shipped("deq_imaging", name, backend)


def pretrained(name: str, backend: str | None = None, device: str | None = None) -> Any:
    """The shipped model ``name`` (e.g. ``"deblur"``) loaded as an
    :class:`~deq_imaging.models.files.ImagingModel` in ``backend`` (default: ``$DEQ_BACKEND``, else one
    installed) on ``device``."""
    return load_model(f"pretrained:imaging/{name}", device, backend)


def subset(recipe: dict[str, Any], root: str | Path = ".") -> tuple[np.ndarray, np.ndarray]:
    """``(degraded, clean)``: the first ``count`` test pairs of ``make_problem(task, config, seed)`` (the
    run's own test set: the same crops, operator and noise draw); a relative ``config["data"]`` folder is
    taken from ``root`` (the card gives it relative to the repository root)."""
    from deq_imaging.datasets.problem import make_problem
    from deq_imaging.models.config import parse_config

    config = dict(recipe["config"])
    if config.get("data") is not None:
        config["data"] = str(Path(root) / config["data"])
    problem = make_problem(recipe["task"], parse_config(config), recipe["seed"])
    count = recipe["count"]
    return problem.test_y[:count], problem.test_x[:count]


def subset_metrics(model: Any, recipe: dict[str, Any], root: str | Path = ".") -> dict[str, float]:
    """The mean PSNR/SSIM (the report's metrics, outputs clipped to [0, 1]) of ``model`` at its own budget
    on :func:`subset` (``root`` as there)."""
    from deq_imaging.evaluation.metrics import mean_scores

    degraded, clean = subset(recipe, root)
    value, similarity = mean_scores(model(degraded), clean)
    return {"psnr": value, "ssim": similarity, "steps": model.steps}
