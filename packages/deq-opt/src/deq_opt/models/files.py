"""The LP models a run trains, as model folders (:mod:`deq_core.model_files`), and the loaded model object.

``deq run opt`` keeps ``OUT/models/implicit`` (the learned PDHG, the reported implicit model),
``OUT/models/deq-gnn`` and ``OUT/models/explicit``. ``model.json`` records the run's full config with the
LP shape ``m`` x ``n`` (enough to rebuild the network), and in ``apply`` the feature and target scales, the
test-time budget of the report's headline number, the PDLP tolerance of its warm starts and the run's test
set (the generator's recipe, or the ``--data`` folder and its test files). Only the weights go through the
backend modules (``save``, ``load``); all else is here.
"""

from __future__ import annotations

import importlib
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from deq_core.analysis.report import package_versions
from deq_core.errors import ModelFileError
from deq_core.model_files import write_model
from deq_opt.baselines.ortools_lp import solve_pdlp
from deq_opt.baselines.result import LPResult
from deq_opt.models.graphs import Scales, decode, featurize
from deq_opt.models.spec import ModelSpec, deq_solve
from deq_opt.operators.lp import LinearProgram

__all__ = ["FOLDERS", "OptModel", "load_model", "write_models"]

FOLDERS = {"pdhg": "implicit", "gnn": "deq-gnn", "explicit": "explicit"}  # run's model -> folder name
CLASSES = ("LearnedPDHG", "DEQGNN", "ExplicitGNN")
ITERATION_LIMIT = 200_000  # PDLP's, as in the run's warm-start comparison


def write_models(
    out_dir: Path,
    models: Mapping[str, Any],
    backend: ModuleType,
    *,
    task: str,
    config: Mapping[str, Any],
    apply: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, Any]],
) -> None:
    """Write each of the run's ``models`` (``"pdhg"``, ``"gnn"``, ``"explicit"``) into ``out_dir/models/``.

    ``apply`` is shared (``steps``: the implicit models' budget; the explicit model records none);
    ``metrics[name]`` is what the model scored in the run's report.
    """
    name = backend.__name__.rpartition(".")[2]
    for kind, model in models.items():
        path = out_dir / "models" / FOLDERS[kind]
        write_model(
            path,
            _writer(backend, model),
            domain="opt",
            task=task,
            backend=name,
            name=FOLDERS[kind],
            model_class=type(model).__name__,
            config=dict(config),
            apply={**apply, "steps": None if kind == "explicit" else apply["steps"]},
            metrics=dict(metrics[kind]),
            versions=package_versions(name),
        )


def _writer(backend: ModuleType, model: Any):
    """``write_files`` of :func:`~deq_core.model_files.write_model`: the backend's one weights file."""

    def write(folder: Path) -> list[str]:
        backend.save(model, folder / backend.WEIGHTS)
        return [backend.WEIGHTS]

    return write


def _spec(config: Mapping[str, Any]) -> ModelSpec:
    """The model hyper-parameters of a manifest's config (as :attr:`OptConfig.spec` builds them)."""
    solve = deq_solve(config["train_iter"], config["tol"], config["pdhg_damping"])
    return ModelSpec(config["hidden"], config["gamma"], config["explicit_layers"], solve)


def load_model(folder: Path, manifest: dict[str, Any], device: str | None) -> OptModel:
    """The model in ``folder`` (verified ``manifest``) on ``device`` (default CPU), in its backend."""
    model_class, config = manifest["model_class"], manifest["config"]
    if model_class not in CLASSES:
        raise ModelFileError(
            f"{folder}: unknown opt model class {model_class!r}; valid: {', '.join(CLASSES)}"
        )
    try:
        spec, n, m = _spec(config), int(config["n"]), int(config["m"])
        scales = Scales(**manifest["apply"]["scales"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(
            f"{folder}/model.json: incomplete or invalid opt model settings: {error}"
        ) from None
    backend = importlib.import_module(f"deq_opt.models.{manifest['backend']}")
    device = device or "cpu"
    network = backend.load(model_class, spec, n, m, Path(folder) / backend.WEIGHTS, device)
    return OptModel(manifest, backend, network, scales, device)


class OptModel:
    """A loaded LP model: ``model(lp_or_list, steps=None)`` predicts primal ``x`` and dual ``y``.

    ``steps`` is the implicit models' number of iterations from zero (default: the budget of the report's
    headline number, ``manifest["apply"]["steps"]``); the explicit GNN has a fixed depth and takes none.
    """

    def __init__(
        self, manifest: dict[str, Any], backend: ModuleType, network: Any, scales: Scales, device: str
    ):
        self.manifest = manifest
        self.network = network
        self.shape = (int(manifest["config"]["m"]), int(manifest["config"]["n"]))
        self._backend, self._scales, self._device = backend, scales, device

    def budget(self, steps: int | None) -> int | None:
        """The iterations a call with ``steps`` runs (None for the explicit GNN); a bad ``steps`` is named."""
        default = self.manifest["apply"]["steps"]
        if steps is None:
            return default
        if default is None:
            raise ValueError(f"the {self.manifest['model_class']} has a fixed depth; call it without steps")
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1 (or None for {default}), got {steps!r}")
        return int(steps)

    def __call__(
        self, lps: LinearProgram | Sequence[LinearProgram], steps: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of one LP ((n,), (m,)) or of a list of LPs ((N, n), (N, m)), float64."""
        single = isinstance(lps, LinearProgram)
        batch = [lps] if single else self._checked(lps)
        budget = self.budget(steps)
        px, py = self._backend.predict(self.network, featurize(batch, self._scales), budget, self._device)
        x, y = decode(batch, px, py, self._scales)
        return (x[0], y[0]) if single else (x, y)

    def _checked(self, lps: Any) -> list[LinearProgram]:
        """``lps`` as a non-empty list of LPs of the trained shape, or an error naming the bad item."""
        if not isinstance(lps, Sequence) or isinstance(lps, str) or not lps:
            raise TypeError(
                f"opt model input must be a LinearProgram or a non-empty list of them, got {lps!r}"
            )
        for k, lp in enumerate(lps):
            if not isinstance(lp, LinearProgram):
                raise TypeError(f"opt model input {k} is a {type(lp).__name__}, not a LinearProgram")
            if lp.shape != self.shape:
                m, n = self.shape
                raise ValueError(
                    f"opt model input {k} ({lp.name}) has {lp.shape[0]} rows x {lp.shape[1]} columns; "
                    f"this model was trained on LPs of {m} rows x {n} columns"
                )
        return list(lps)

    def warm_start_pdlp(
        self, lp: LinearProgram, steps: int | None = None, tol: float | None = None
    ) -> LPResult:
        """OR-Tools PDLP on ``lp`` warm-started from this model's prediction, to ``tol`` (default: the
        run's warm-start tolerance ``manifest["apply"]["pdlp_tolerance"]``)."""
        if not isinstance(lp, LinearProgram):
            raise TypeError(f"warm_start_pdlp takes one LinearProgram, got {type(lp).__name__}")
        tol = self.manifest["apply"]["pdlp_tolerance"] if tol is None else tol
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
            raise ValueError(f"warm_start_pdlp: tol must be a number in (0, 1), got {tol!r}")
        x, y = self(lp, steps)
        return solve_pdlp(lp, tol=tol, iteration_limit=ITERATION_LIMIT, x0=x, y0=y)

    def __repr__(self) -> str:
        """Class, task, backend and LP shape."""
        m = self.manifest
        return (
            f"OptModel({m['model_class']}, task={m['task']!r}, backend={m['backend']!r}, shape={self.shape})"
        )
