"""Imaging model folders, backend-free: what ``deq run`` keeps of each model and the loaded, callable model.

:func:`save_models` writes ``OUT/models/NAME/`` (``implicit``, ``explicit`` and, when trained, ``unrolled``)
through :func:`deq_core.model_files.write_model`: the weights (safetensors for torch, Equinox leaves for JAX,
by the backend's ``models`` module), the run's config, the operator (kind, blur kernel or CT angles), the
noise level, the test-time budget and the PSNR/SSIM the run reported. :func:`load_model` rebuilds the
network from the config and returns an :class:`ImagingModel`: ``model(y, steps=None)`` restores degraded
images (sinograms for CT) (N, C, H, W).
"""

from __future__ import annotations

import importlib
import numbers
from pathlib import Path
from typing import Any

import numpy as np
from array_api_compat import is_array_api_obj, is_numpy_array, is_torch_array, to_device

from deq_core.analysis.report import package_versions
from deq_core.errors import ModelFileError
from deq_core.model_files import write_model
from deq_imaging.backends import Backend
from deq_imaging.backends import load as load_backend
from deq_imaging.datasets.problem import OperatorSpec, Problem
from deq_imaging.evaluation.pipeline import restore
from deq_imaging.models.config import ImagingConfig, parse_config

NAMES = ("implicit", "explicit", "unrolled")
FLOATS = ("float16", "bfloat16", "float32", "float64")


def apply_record(problem: Problem, cfg: ImagingConfig, name: str) -> dict[str, Any]:
    """Everything besides the weights needed to apply the model ``name`` of ``problem``'s run."""
    spec = problem.spec
    return {
        "operator": {
            "kind": spec.kind,
            "kernel": None if spec.kernel is None else np.asarray(spec.kernel).tolist(),
            "theta": None if spec.theta is None else np.asarray(spec.theta).tolist(),
            "image_size": spec.image_size,
        },
        "input": "sinograms" if spec.kind == "radon" else "degraded images",
        "channels": int(problem.test_x.shape[1]),
        "noise_std": float(problem.sigma),
        "range": [0.0, 1.0],
        "steps": cfg.max_iter if name == "implicit" else None,
        "stages": cfg.unrolled_stages if name == "unrolled" else None,
    }


def run_metrics(result: dict[str, Any], cfg: ImagingConfig) -> dict[str, dict[str, Any]]:
    """The report's PSNR/SSIM of each model; the implicit model's at its test-time budget ``max_iter``
    (and at every budget), ``None`` there when the run's budgets leave it out."""
    budgets = list(result["iterations"])
    at = budgets.index(cfg.max_iter) if cfg.max_iter in budgets else None
    metrics = {
        "implicit": {
            "steps": cfg.max_iter,
            "psnr": None if at is None else result["psnr"][at],
            "ssim": None if at is None else result["ssim"][at],
            "psnr_per_budget": dict(zip(map(str, budgets), result["psnr"], strict=True)),
            "ssim_per_budget": dict(zip(map(str, budgets), result["ssim"], strict=True)),
        },
        "explicit": {"psnr": result["explicit"]["psnr"], "ssim": result["explicit"]["ssim"]},
    }
    if result["unrolled"]:
        unrolled = result["unrolled"]
        metrics["unrolled"] = {
            "psnr": unrolled["psnr"],
            "ssim": unrolled["ssim"],
            "stages": unrolled["stages"],
        }
    return metrics


def save_models(
    out_dir: Path,
    task: str,
    config: dict[str, Any],
    cfg: ImagingConfig,
    problem: Problem,
    backend: str,
    result: dict[str, Any],
) -> list[Path]:
    """Write every model of ``result`` (the pipeline's ``models``) into ``out_dir/models/NAME``."""
    module = importlib.import_module(f"deq_imaging.models.{backend}")
    metrics = run_metrics(result, cfg)
    versions = package_versions(backend)
    folders = []
    for name, model in result["models"].items():
        folders.append(
            write_model(
                Path(out_dir) / "models" / name,
                lambda folder, model=model: module.save(model, folder),
                domain="imaging",
                task=task,
                backend=backend,
                name=name,
                model_class=type(model).__name__,
                config=dict(config),
                apply=apply_record(problem, cfg, name),
                metrics=metrics[name],
                versions=versions,
            )
        )
    return folders


def spec_of(apply: dict[str, Any]) -> OperatorSpec:
    """The :class:`OperatorSpec` a model folder's ``apply`` record describes."""
    op = apply["operator"]
    array = lambda values: None if values is None else np.asarray(values, dtype=np.float64)
    return OperatorSpec(
        op["kind"], kernel=array(op["kernel"]), theta=array(op["theta"]), image_size=op["image_size"]
    )


def skeleton(backend: Backend, name: str, spec: OperatorSpec, cfg: ImagingConfig, stages: int | None) -> Any:
    """A freshly built, placed model ``name`` of ``cfg`` (the template the saved weights go into)."""
    models = backend.models
    if name == "implicit":
        return backend.place(models.ImplicitNet(backend.cells(spec, cfg, 0, 1)[0], cfg.solve))
    if name == "explicit":
        return backend.place(models.Explicit(backend.cells(spec, cfg, 0, 1)[0]))
    return backend.place(models.Unrolled(backend.cells(spec, cfg, 0, int(stages or 0))))


def load_model(folder: Path, manifest: dict[str, Any], device: str | None = None) -> ImagingModel:
    """The imaging model in ``folder`` (its verified ``manifest``) on ``device``, in the backend that trained
    it; a folder whose weights do not fit its config raises :class:`~deq_core.errors.ModelFileError`."""
    name = manifest["name"]
    if manifest["domain"] != "imaging" or name not in NAMES:
        raise ModelFileError(
            f"{folder} holds a {manifest['domain']} model {name!r}; deq_imaging loads imaging models {NAMES}"
        )
    try:
        cfg = parse_config(manifest["config"])
        spec = spec_of(manifest["apply"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{folder}/model.json: its config or apply record is invalid: {error}") from None
    backend = load_backend(manifest["backend"], device or "cpu")
    module = importlib.import_module(f"deq_imaging.models.{manifest['backend']}")
    with backend.scope():
        template = skeleton(backend, name, spec, cfg, manifest["apply"].get("stages"))
        network = backend.inference(module.load(template, Path(folder)))
    return ImagingModel(manifest, network, backend)


def _steps(value: Any) -> int:
    """``value`` as a budget (an integer >= 1), else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"steps must be an integer >= 1 (or None for the model's own budget), got {value!r}")
    return int(value)


class ImagingModel:
    """A loaded imaging model: ``model(y, steps=None)`` restores degraded images (sinograms for CT).

    ``manifest`` is its verified ``model.json``. ``y`` is (N, C, H, W), real floating point, in the value
    range it was trained on ([0, 1] images plus noise); a numpy array gives numpy back, an array of the
    model's framework (torch or JAX) gives one back on the model's device.
    """

    def __init__(self, manifest: dict[str, Any], network: Any, backend: Backend) -> None:
        """Wrap ``network`` (in inference mode) and the ``backend`` adapter it runs through."""
        self.manifest, self.network, self.backend = manifest, network, backend
        self.name = manifest["name"]
        self.spec = spec_of(manifest["apply"])

    @property
    def steps(self) -> int | None:
        """The test-time budget ``steps=None`` means (the run's ``max_iter``); None for one-shot models."""
        return self.manifest["apply"]["steps"]

    def check(self, y: Any, steps: Any = None) -> int | None:
        """Raise a ValueError naming what is wrong with the input ``y`` or ``steps``; return the budget."""
        shape, dtype = tuple(y.shape), str(y.dtype).removeprefix("torch.")
        channels = self.manifest["apply"]["channels"]
        if len(shape) != 4 or shape[0] < 1 or shape[1] != channels:
            raise ValueError(
                f"the {self.name} model takes input of shape (N, {channels}, H, W) with N >= 1, got {shape}"
            )
        if dtype not in FLOATS:
            raise ValueError(
                f"the {self.name} model takes real floating-point input (images in [0, 1]), got dtype {dtype}"
            )
        if self.spec.kind == "radon":
            expected = (self.spec.image_size, len(self.spec.theta))
            if shape[2:] != expected:
                raise ValueError(
                    f"the CT model takes sinograms of shape (N, {channels}, {expected[0]}, {expected[1]}) "
                    f"(detectors, angles), got {shape}"
                )
        elif self.spec.kind == "blur" and min(shape[2:]) < max(self.spec.kernel.shape):
            raise ValueError(
                f"the deblur model takes images at least as large as its {self.spec.kernel.shape} kernel, "
                f"got {shape}"
            )
        if self.steps is None:
            if steps is not None:
                raise ValueError(f"the {self.name} model has no test-time budget; call it without steps")
            return None
        return self.steps if steps is None else _steps(steps)

    def __call__(self, y: Any, steps: int | None = None) -> Any:
        """The restored images (N, C', H', W') of ``y`` after ``steps`` iterations (None: the model's own)."""
        if not is_array_api_obj(y):
            y = np.asarray(y)
        budget = self.check(y, steps)
        host = np.asarray(to_device(y, "cpu").detach() if is_torch_array(y) else y)
        if not np.all(np.isfinite(host)):
            raise ValueError(f"{self.name} model input has NaN or infinite values")
        with self.backend.scope():
            out = restore(self.backend, self.network, self.backend.array(host), budget)
        return self.backend.numpy(out) if is_numpy_array(y) else out
