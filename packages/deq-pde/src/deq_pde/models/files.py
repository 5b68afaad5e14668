"""Model folders of the FNOs a ``pde`` run trains, and the loaded model ``model(inputs, steps=None)``.

``deq run pde`` keeps each trained model in ``OUT/models/NAME/`` (``implicit``: the FNO-DEQ; ``explicit``:
the same-size FNO; ``explicit_depth<d>``: the deeper FNOs of ``explicit_depths``) through
:func:`deq_core.model_files.write_model`: the weights of the backend that trained it and ``model.json``
with the run's config, what the model is applied to (task, input, grid, PDE, data settings, normalisation,
test-time budget) and the metrics of the run's report. :func:`load_model` rebuilds a model from its folder
in the backend that trained it; the backend modules only build, read and apply the weights.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from deq_core.analysis.report import package_versions
from deq_core.errors import ModelFileError
from deq_core.model_files import read_manifest, resolve, write_model
from deq_pde.models.settings import MODEL_KEYS, model_settings

DOMAIN = "pde"
CLASSES = {"FNODEQ": "the FNO-DEQ", "FNO": "an explicit FNO"}
GRID = "entry [i, j] is the value at (x_j, y_i) = (j, i) / (n - 1) on the unit square"

__all__ = ["PDEModel", "load", "load_model", "model_name", "save_model"]


def model_name(depth: int | None) -> str:
    """A run's model folder name: ``implicit`` (depth None), ``explicit`` (depth 1), ``explicit_depth<d>``."""
    return "implicit" if depth is None else "explicit" if depth == 1 else f"explicit_depth{depth}"


def _backend(backend: str) -> Any:
    """The models module of ``backend`` (``deq_pde.models.torch`` or ``.jax``), imported when needed."""
    if backend not in ("torch", "jax") or importlib.util.find_spec(backend) is None:
        raise ModelFileError(
            f"this is a {backend} model and {backend} is not installed here "
            f"(pip install 'deq-pde[{backend}]')"
        )
    if backend == "torch":
        from deq_pde.models import torch as module
    else:
        from deq_pde.models import jax as module
    return module


def save_model(
    folder: str | os.PathLike,
    model: Any,
    depth: int | None,
    *,
    task: str,
    backend: str,
    config: Mapping[str, Any],
    apply: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> Path:
    """Write the trained FNO-DEQ (``depth`` None) or depth-``depth`` FNO ``model`` as a model folder.

    ``config`` is the run's full config, ``apply`` what applying it needs (``grid_size`` and ``input`` at
    least; an FNO-DEQ's ``steps`` is its default test-time budget), ``metrics`` its scores in the report.
    """
    module = _backend(backend)

    def write_weights(staging: Path) -> list[str]:
        module.save_weights(model, staging / module.WEIGHTS)
        return [module.WEIGHTS]

    return write_model(
        folder,
        write_weights,
        domain=DOMAIN,
        task=task,
        backend=backend,
        name=model_name(depth),
        model_class="FNODEQ" if depth is None else "FNO",
        config={**config, **({} if depth is None else {"depth": depth})},
        apply={"grid": GRID, **apply},
        metrics=dict(metrics),
        versions=package_versions(backend),
    )


class PDEModel:
    """A loaded FNO-DEQ or FNO: ``model(inputs, steps=None)`` maps grid inputs (B, n, n) to solutions.

    ``manifest`` is the verified ``model.json``, ``module`` the framework's model (an ``nn.Module`` or an
    ``eqx.Module``), ``input_name`` what it reads (``coefficient`` for darcy, ``forcing`` for nonlinear).
    """

    def __init__(self, manifest: dict[str, Any], module: Any, apply: Any) -> None:
        self.manifest, self.module, self._apply = manifest, module, apply
        self.name, self.task, self.backend = manifest["name"], manifest["task"], manifest["backend"]
        self.implicit = manifest["model_class"] == "FNODEQ"
        self.grid_size = int(manifest["apply"]["grid_size"])
        self.input_name = manifest["apply"]["input"]
        self.steps = manifest["apply"]["steps"] if self.implicit else None
        """The default test-time budget: the iterations of the report's headline error (None: explicit)."""

    def __repr__(self) -> str:
        kind = f"FNO-DEQ, {self.steps} iterations by default" if self.implicit else "explicit FNO"
        return f"PDEModel({self.task}/{self.name}: {kind}, {self.backend}, grid {self.grid_size})"

    def __call__(self, inputs: Any, steps: int | None = None) -> np.ndarray:
        """The predicted solutions (B, n, n) as float32 numpy of ``inputs`` (B, n, n), numpy or a backend
        array; an FNO-DEQ runs exactly ``steps`` iterations from zero (default :attr:`steps`)."""
        return self._apply(self.check_inputs(inputs), self.budget(steps))

    def budget(self, steps: Any) -> int | None:
        """``steps`` checked (an integer >= 1, or None for the default); a ValueError names a bad one."""
        if steps is None:
            return self.steps
        if not self.implicit:
            raise ValueError(
                f"steps={steps!r}: model {self.name!r} is an explicit FNO of fixed depth; a test-time "
                f"budget applies to the FNO-DEQ (implicit) only"
            )
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1 (iterations of the FNO-DEQ), got {steps!r}")
        return int(steps)

    def check_inputs(self, inputs: Any) -> Any:
        """``inputs`` if it is a finite real (B, n, n) array of this model's grid, else a ValueError."""
        n, what = self.grid_size, f"{self.input_name} fields"
        if not is_array_api_obj(inputs):
            try:
                inputs = np.asarray(inputs)
            except (ValueError, TypeError) as error:
                raise ValueError(f"{what} must be an array (B, {n}, {n}): {error}") from None
        xp = array_namespace(inputs)
        if not _is_real(xp, inputs.dtype):
            raise ValueError(f"{what} must hold real numbers (float or int), got dtype {inputs.dtype}")
        shape = tuple(inputs.shape)
        if len(shape) != 3 or shape[1:] != (n, n) or shape[0] == 0:
            hint = "; one field: x[None]" if shape == (n, n) else ""
            raise ValueError(f"{what} must have shape (B, {n}, {n}) with B >= 1, got {shape}{hint}")
        if not bool(xp.all(xp.isfinite(inputs))):
            raise ValueError(f"{what} hold NaN or infinite values")
        return inputs


def _is_real(xp: Any, dtype: Any) -> bool:
    """Whether ``dtype`` is a real floating or integer dtype (not bool, complex, strings or objects)."""
    try:
        return bool(xp.isdtype(dtype, ("real floating", "signed integer", "unsigned integer")))
    except (TypeError, ValueError):  # numpy's strings and objects are no array API dtype
        return False


def load(folder: str | os.PathLike, manifest: dict[str, Any], device: str | None = None) -> PDEModel:
    """The model of the verified ``manifest`` of ``folder`` on ``device``, in the backend that trained it."""
    if manifest["model_class"] not in CLASSES:
        raise ModelFileError(
            f"{folder}: model_class {manifest['model_class']!r} is not a pde model ({', '.join(CLASSES)})"
        )
    config, apply, implicit = manifest["config"], manifest["apply"], manifest["model_class"] == "FNODEQ"
    needed = {
        "apply": ("grid_size", "input", *(("steps",) if implicit else ())),
        "config": (*MODEL_KEYS, *(() if implicit else ("depth",))),
    }
    missing = [f"{part}.{key}" for part, keys in needed.items() for key in keys if key not in manifest[part]]
    if missing:
        raise ModelFileError(f"{folder}/model.json lacks {', '.join(missing)}")
    try:
        settings = model_settings(config)
    except ValueError as error:
        raise ModelFileError(f"{folder}/model.json holds an invalid model config: {error}") from None
    depth = None if implicit else int(config["depth"])
    backend = _backend(manifest["backend"])
    model = backend.read(Path(folder) / backend.WEIGHTS, int(apply["grid_size"]), settings, depth, device)
    return PDEModel(manifest, model, lambda inputs, steps: backend.apply(model, inputs, steps))


def load_model(path: str | os.PathLike, device: str | None = None) -> PDEModel:
    """The pde model folder ``path`` (``OUT/models/NAME`` of a ``deq run pde``) loaded on ``device``.

    A folder that holds another domain's model, or a damaged one, is a ModelFileError saying so.
    """
    folder = resolve(path)
    manifest = read_manifest(folder)
    if manifest["domain"] != DOMAIN:
        raise ModelFileError(
            f"{folder} holds a {manifest['domain']!r} model; deq_pde.load_model loads pde models "
            f"(deq_core.load_model loads any domain's)"
        )
    return load(folder, manifest, device)
