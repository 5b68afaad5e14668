"""deq-opt: linear programs for deq — MPS files, generators, OR-Tools baselines and restarted PDHG."""

from __future__ import annotations

import os
from typing import Any

from deq_core.errors import ModelFileError
from deq_core.model_files import load_model as _load_model
from deq_core.model_files import read_manifest, resolve
from deq_opt.operators.lp import LinearProgram
from deq_opt.pretrained import pretrained

__all__ = ["LinearProgram", "load_model", "pretrained"]
__version__ = "0.1.0"


def load_model(path: str | os.PathLike, device: str | None = None) -> Any:
    """The LP model a ``deq run opt`` kept (``OUT/models/NAME``) as a :class:`~deq_opt.models.files.OptModel`.

    Call it as ``model(lp_or_list, steps=None)`` -> ``(x, y)``; ``model.warm_start_pdlp(lp)`` runs PDLP from
    its prediction. A model folder of another domain raises :class:`~deq_core.errors.ModelFileError`.
    """
    folder = resolve(path)
    domain = read_manifest(folder)["domain"]
    if domain != "opt":
        raise ModelFileError(f"{folder} is a {domain!r} model, not an opt model; load it with deq_{domain}")
    return _load_model(folder, device)
