"""deq-imaging: image-reconstruction operators (torch / JAX), datasets, classical baselines and metrics.

``deq_imaging.pretrained("deblur")`` loads a shipped pretrained model (see ``deq_imaging/pretrained``).
"""

from __future__ import annotations

import os
from typing import Any

from deq_imaging.pretrained import pretrained  # the function, not the submodule of the same name

__version__ = "0.1.0"
__all__ = ["load_model", "pretrained"]


def load_model(path: str | os.PathLike, device: str | None = None) -> Any:
    """The imaging model folder ``path`` (written by ``deq run imaging``) loaded on ``device``: call it as
    ``model(y, steps=None)``; a model of another domain raises :class:`~deq_core.errors.ModelFileError`."""
    from deq_core.errors import ModelFileError
    from deq_core.model_files import load_model as load
    from deq_core.model_files import read_manifest, resolve

    domain = read_manifest(resolve(path))["domain"]
    if domain != "imaging":
        raise ModelFileError(f"{path} holds a {domain} model, not an imaging one (use deq_core.load_model)")
    return load(path, device)
