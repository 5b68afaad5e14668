"""The pretrained PDE models deq-pde ships: ``pretrained/NAME-BACKEND/`` model folders with a ``CARD.md``.

``darcy-torch`` and ``darcy-jax`` are the FNO-DEQ (``implicit``) of ``deq run pde --task darcy --quick``
(made by ``benchmarks/train_pretrained.py``). Each card ends in a JSON block: the recipe of a small subset
of the model's test set (the first fields, rebuilt by :func:`subset`) and the error the model scored on it,
which the tests re-check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deq_core.model_files import load_model, read_card, shipped
from deq_pde.models.fourier import relative_l2

__all__ = ["folder", "pretrained", "read_card", "subset", "subset_metrics"]


def folder(name: str, backend: str) -> Path:
    """The shipped model folder ``NAME-BACKEND`` (the plugin's ``pretrained`` hook), else ModelFileError."""
    return shipped("deq_pde", name, backend)


def pretrained(name: str, backend: str | None = None, device: str | None = None) -> Any:
    """The shipped model ``name`` (e.g. ``"darcy"``) loaded as a :class:`~deq_pde.models.files.PDEModel`
    in ``backend`` (default: ``$DEQ_BACKEND``, else one installed) on ``device``."""
    return load_model(f"pretrained:pde/{name}", device, backend)


def subset(recipe: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(coefficient, solution)`` (count, n, n) of the Darcy samples ``start .. start + count - 1`` of the
    dataset ``recipe["data"]`` (a :class:`~deq_pde.datasets.darcy.DarcyConfig`), labelled by FEM."""
    from deq_pde.datasets.darcy import DarcyConfig, darcy_sample  # FEM (basix) only when rebuilding

    config = DarcyConfig(**recipe["data"])
    samples = [darcy_sample(config, i) for i in range(recipe["start"], recipe["start"] + recipe["count"])]
    return np.stack([s["coefficient"] for s in samples]), np.stack([s["solution"] for s in samples])


def subset_metrics(model: Any, recipe: dict[str, Any]) -> dict[str, float]:
    """The mean relative L2 error (the report's metric) of ``model`` at its own budget on :func:`subset`."""
    coefficient, solution = subset(recipe)
    errors = relative_l2(model(coefficient).astype(np.float64), solution)
    return {"rel_l2": float(np.mean(errors)), "steps": model.steps}
