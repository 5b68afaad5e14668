"""The ``deq`` command: ``list`` the installed domains, ``run`` one task and report, ``predict`` with a model.

``deq run`` calls the domain's ``run`` (see :mod:`deq_core.domains`) with the task's config, overridden by
``--config FILE``, ``--set key=value`` and ``--data PATH`` (:mod:`deq_core.overrides`), prints a table, and
writes into ``--out`` the domain's figures and model folders (``models/NAME/``), ``config.json`` (the
effective config), ``scaling.png`` and, last, ``report.json`` (atomically, schema-checked): a folder holds a
``report.json`` only when every output of that run is there. ``deq predict`` loads a model folder or
``pretrained:DOMAIN/NAME`` (:mod:`deq_core.model_files`) and applies it to ``--input`` through the domain.
Bad names, values, paths and model files end the command before any work with a one-line error, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.analysis.plot import plot_scaling
from deq_core.analysis.report import ReportError, package_versions, validate_report, write_report
from deq_core.analysis.table import format_table
from deq_core.domains import BACKENDS, discover, smoke
from deq_core.errors import ConfigError, ModelFileError
from deq_core.files import atomic_write
from deq_core.model_files import read_manifest, resolve
from deq_core.overrides import apply_overrides

DEVICES = ("cpu", "cuda")
MAX_SEED = 2**32 - 1  # numpy's global seed range


class UsageError(Exception):
    """A bad command line; printed as one line, exit code 2."""


def _choose(kind: str, value: str, valid: Sequence[str]) -> str:
    if value not in valid:
        listed = ", ".join(valid) if valid else "(none installed)"
        raise UsageError(f"unknown {kind} {value!r}; valid {kind}s: {listed}")
    return value


def _installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deq",
        description="Implicit-model domains: list them, run a task and report, predict with a model.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="show the installed domains and their tasks")
    run = commands.add_parser(
        "run", help="train and evaluate one domain task; write report.json and scaling.png"
    )
    run.add_argument("domain", help="domain name (see `deq list`)")
    run.add_argument("--task", help="task of the domain (default: its first task)")
    run.add_argument("--quick", action="store_true", help="small configuration (minutes on a 2-core CPU)")
    run.add_argument("--backend", help="torch or jax (default: $DEQ_BACKEND, else the first installed)")
    run.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    run.add_argument("--out", type=Path, help="output folder (default: runs/DOMAIN-TASK-BACKEND)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    run.add_argument("--threads", type=int, help="CPU threads for the backend")
    run.add_argument("--config", type=Path, help="TOML (or JSON) file overriding the task's config")
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key (repeatable)"
    )
    run.add_argument("--data", type=Path, help="your own data (a folder or file, see the domain's README)")
    predict = commands.add_parser("predict", help="apply a saved model to new data and write its outputs")
    predict.add_argument(
        "--model", required=True, help="a model folder (OUT/models/NAME), or pretrained:DOMAIN/NAME"
    )
    predict.add_argument("--input", required=True, type=Path, help="the data to apply it to (see the domain)")
    predict.add_argument("--out", required=True, type=Path, help="output folder (created when missing)")
    predict.add_argument("--steps", type=int, help="test-time iterations (default: the model's own)")
    predict.add_argument(
        "--reference", type=Path, help="ground truth to score against (where the domain has one)"
    )
    predict.add_argument("--backend", help="backend of a pretrained model (default: $DEQ_BACKEND)")
    predict.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    predict.add_argument("--threads", type=int, help="CPU threads for the backend")
    return parser


def _list() -> int:
    domains, errors = discover()
    if not domains and not errors:
        print("no deq domains installed (entry-point group 'deq.domains')")
    for name, domain in domains.items():
        backends = ", ".join(getattr(domain, "backends", BACKENDS))
        description = getattr(domain, "description", "")
        print(f"{name}" + (f": {description}" if description else "") + f"  [backends: {backends}]")
        width = max(len(task) for task in domain.tasks)
        for task, text in domain.tasks.items():
            print(f"  {task.ljust(width)}  {text}")
    for name, error in errors.items():
        print(f"{name}: BROKEN ({error})")
    return 0


def _set_threads(backend: str, threads: int | None) -> None:
    """Limit the backend's CPU threads (set before the domain first imports the backend)."""
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        flags = os.environ.get("XLA_FLAGS", "")
        if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def _seed_globals(backend: str, seed: int) -> None:
    """Seed Python's, numpy's and (for torch) torch's global RNGs, so that ``--seed`` reproduces a run even
    where a domain or a library it calls draws from them (torch seeds its default generator at random)."""
    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)


def _check_device(backend: str, device: str) -> None:
    """Fail early, in one line, when ``--device cuda`` has no GPU behind it."""
    if device != "cuda":
        return
    if backend == "torch":
        import torch

        available = torch.cuda.is_available()
    else:
        import jax

        available = any(d.platform == "gpu" for d in jax.devices())
    if not available:
        raise UsageError(f"--device cuda: no GPU is visible to {backend}; valid devices here: cpu")


def _run(args: argparse.Namespace) -> int:
    domains, errors = discover()
    if args.domain in errors:
        raise UsageError(f"domain {args.domain!r} is installed but failed to load: {errors[args.domain]}")
    domain = domains[_choose("domain", args.domain, sorted(domains))]
    task = args.task if args.task is not None else next(iter(domain.tasks))
    _choose("task", task, list(domain.tasks))
    supported = list(getattr(domain, "backends", BACKENDS))
    installed = [b for b in supported if b in _installed_backends()]
    backend = args.backend or os.environ.get("DEQ_BACKEND") or (installed[0] if installed else supported[0])
    _choose("backend", backend, supported)
    if backend not in installed:
        raise UsageError(
            f"backend {backend!r} is not installed here; installed backends: {', '.join(installed)}"
        )
    _choose("device", args.device, list(DEVICES))
    _set_threads(backend, args.threads)
    _check_device(backend, args.device)

    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
    _seed_globals(backend, args.seed)
    try:
        smoke()
        config = apply_overrides(domain.default_config(task, args.quick), args.config, args.set, args.data)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out_dir = _out_dir(args.out if args.out is not None else Path("runs") / f"{domain.name}-{task}-{backend}")
    (out_dir / "report.json").unlink(missing_ok=True)  # the folder holds a report only once this run is whole
    start = time.perf_counter()
    try:
        report = domain.run(task, config, backend, args.device, out_dir, args.seed)
    except ConfigError as exc:  # a domain's check of its config or --data, raised before any work is lost
        raise UsageError(str(exc)) from None
    report = _complete(report, config, backend, time.perf_counter() - start)
    try:
        validate_report(report)
    except ReportError as exc:
        print(f"deq: error: domain {domain.name!r} returned an invalid report: {exc}", file=sys.stderr)
        return 1
    print(format_table(report))
    plot_path = plot_scaling(report, out_dir / "scaling.png")
    atomic_write(out_dir / "config.json", json.dumps(config, indent=1, default=str) + "\n")
    report_path = write_report(report, out_dir / "report.json")
    print(f"wrote {report_path}, {plot_path} and {out_dir / 'config.json'}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    """``deq predict``: load the model, apply it to ``--input`` through its domain, write predictions.json."""
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if not args.input.exists():
        raise UsageError(f"--input {args.input}: no such file or folder")
    if args.backend is not None:
        _choose("backend", args.backend, list(BACKENDS))
    _choose("device", args.device, list(DEVICES))
    try:
        folder = resolve(args.model, args.backend)
        manifest = read_manifest(folder)
    except ModelFileError as exc:
        raise UsageError(str(exc)) from None
    backend = manifest["backend"]
    if args.backend is not None and args.backend != backend:
        raise UsageError(f"model {folder} is a {backend} model; run it with --backend {backend}")
    if backend not in _installed_backends():
        raise UsageError(f"model {folder} needs {backend}, which is not installed here")
    _set_threads(backend, args.threads)
    _check_device(backend, args.device)
    domains, _ = discover()
    domain = domains.get(manifest["domain"])
    if getattr(domain, "predict", None) is None or getattr(domain, "load_model", None) is None:
        raise UsageError(f"model {folder}: domain {manifest['domain']!r} is not installed or cannot predict")
    out_dir = _out_dir(args.out)
    try:
        model = domain.load_model(folder, manifest, args.device)
        result = domain.predict(model, args.input, out_dir, steps=args.steps, reference=args.reference)
    except (ConfigError, ModelFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    rows = result.get("rows", [])
    if rows:
        print(_rows_table(rows))
    path = atomic_write(out_dir / "predictions.json", json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {path} ({len(rows)} inputs)")
    return 0


def _rows_table(rows: list[dict[str, Any]]) -> str:
    """Rows of scalars as an aligned text table (columns of the first row)."""
    columns = list(rows[0])
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """One table cell: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _out_dir(path: Path) -> Path:
    """Create the ``--out`` folder and check that it can be written, before any training starts."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file; give a folder (it is created when missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".deq-write-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"--out {path} cannot be written: {exc.strerror or exc}") from None
    return path


def _complete(report: Any, config: dict[str, Any], backend: str, seconds: float) -> Any:
    """Fill in ``seconds``, ``config`` and ``versions`` where the domain left them out."""
    if isinstance(report, dict):
        report.setdefault("seconds", seconds)
        report.setdefault("config", config)
        report.setdefault("versions", package_versions(backend))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deq`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return {"list": lambda _: _list(), "run": _run, "predict": _predict}[args.command](args)
    except UsageError as exc:
        print(f"deq: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
