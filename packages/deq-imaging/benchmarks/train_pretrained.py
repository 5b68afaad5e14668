"""Train a shipped pretrained imaging model (the DEQ of ``deq run imaging``) and write its model card.

    OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \\
        python packages/deq-imaging/benchmarks/train_pretrained.py --task deblur --backend torch --seed 0

runs ``deq run imaging --task T --quick --backend B --seed S --threads 1`` (plus any ``--set KEY=VALUE`` and
``--data PATH``; the CLI's own run, so the model is exactly the one a user's run makes), copies
``OUT/models/implicit`` (the report's headline model) into ``src/deq_imaging/pretrained/T-B/`` and writes
``CARD.md`` there: the command, seed, training wall and CPU time, parameter count, size, the run's test
metrics (and the classical baselines' on the same images), and the PSNR on the first ``SUBSET`` test images
that ``tests/test_pretrained.py`` re-checks. The figures are printed too.

For ``denoise`` the card also gets the model's and BM3D's mean PSNR and time on the whole images of Set12 and
BSD68 (``--benchmarks``, default ``../shared/data/images``), the same fixed-seed noisy images given to both
in this process (:mod:`deq_imaging.evaluation.benchmarks`). ``--evaluate-only`` trains nothing: it
re-evaluates the shipped folder ``T-B`` (its weights untouched) and rewrites that section of its card::

    OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \\
        python packages/deq-imaging/benchmarks/train_pretrained.py --task denoise --backend jax \\
        --evaluate-only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from deq_core import cli
from deq_core.domains import smoke
from deq_core.errors import ModelFileError
from deq_core.files import atomic_path
from deq_imaging import load_model
from deq_imaging.datasets import load_benchmark
from deq_imaging.evaluation.benchmarks import PUBLISHED_BSD68, compare
from deq_imaging.pretrained import read_card, subset_metrics

TASKS = ("deblur", "denoise", "ct")
SUBSET = 4  # the first SUBSET test images of the run's problem
ROOT = Path(__file__).resolve().parents[3]  # the repository
DEST = ROOT / "packages" / "deq-imaging" / "src" / "deq_imaging" / "pretrained"
SCRIPT = "packages/deq-imaging/benchmarks/train_pretrained.py"
BENCHMARKS = ROOT.parent / "shared" / "data" / "images"  # Set12/, BSD68/ (read-only reference data)
SETS = ("Set12", "BSD68")
NOISE_SEED = 100  # + the training seed + i: the noise of benchmark image i (as benchmarks/denoise_bsd68.py)
SECTION = "## Set12 and BSD68"


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _table(rows: dict[str, float]) -> list[str]:
    """A two-column markdown table of ``rows``."""
    return ["| metric | value |", "| --- | --- |", *(f"| {k} | {v:.6g} |" for k, v in rows.items())]


def _card(manifest: dict, report: dict, figures: dict, recipe: dict, scores: dict, command: str) -> str:
    """CARD.md: what the model is, how it was made, and its figures (a JSON block the CI test reads)."""
    task, config, metrics = manifest["task"], manifest["config"], manifest["metrics"]
    baselines = report["quality"]["baselines"]
    data = f"the images of `{recipe['config']['data']}`" if config.get("data") else "scikit-image's samples"
    if task == "ct" and not config.get("data"):
        data = "seeded random-ellipse phantoms (Shepp-Logan is the first test image)"
    lines = [
        f"# imaging/{task} pretrained model ({manifest['backend']})",
        "",
        f"The weight-tied DEQ (`{manifest['model_class']}`, {config['model'].upper()} cell), the implicit "
        f"model whose PSNR is the headline of the `imaging/{task}` report.",
        "",
        f"- task: `imaging/{task}`: {manifest['apply']['operator']['kind']} operator, noise std "
        f"{manifest['apply']['noise_std']:.6g}",
        f"- data: {data}; {report['extra']['test_images']} test images of "
        f"{config['image_size']}x{config['image_size']} (split by image from the training images)",
        f"- command: `{command}`",
        f"- seed: {figures['seed']}",
        f"- training: {config['steps']} DEQ steps, {config['explicit_steps']} explicit-twin steps; "
        f"{figures['wall_seconds']:.0f} s wall, {figures['cpu_seconds']:.0f} s CPU (the whole run: data, "
        "the DEQ and its explicit twin, evaluation, classical baselines), one thread",
        f"- parameters: {figures['params']}",
        f"- size: {figures['bytes']} bytes",
        f"- test-time budget: {manifest['apply']['steps']} iterations",
        "",
        f"## Test metrics ({report['extra']['test_images']} test images, {metrics['steps']} iterations)",
        "",
        *_table({"psnr (dB)": metrics["psnr"], "ssim": metrics["ssim"]}),
        "",
        "PSNR (dB) per budget: " + ", ".join(f"{t}: {v:.2f}" for t, v in metrics["psnr_per_budget"].items()),
        "",
        "Same run, same test images: "
        + "; ".join(
            [f"explicit twin {report['quality']['explicit']:.2f} dB"]
            + [f"{name} {b['value']:.2f} dB" for name, b in baselines.items()]
            + ([f"degraded input {report['extra']['degraded_psnr']:.2f} dB"] if task != "ct" else [])
        ),
        "",
        f"## Subset re-checked by CI (first {SUBSET} test images)",
        "",
        f"`deq_imaging.pretrained.subset(recipe)` rebuilds the run's problem (`make_problem(task, config, "
        f"seed)`) and takes its first {SUBSET} test pairs; `tests/test_pretrained.py` checks the model's "
        "mean PSNR on them within 0.1 dB of:",
        "",
        *_table({k: v for k, v in scores.items() if k != "steps"}),
        "",
        "```json",
        json.dumps({"subset": recipe, "subset_metrics": scores}, indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def _benchmark(model, root: Path, seed: int, command: str) -> dict:
    """The model at its budget and BM3D on the same noisy whole images of each of ``SETS`` under ``root``."""
    sigma = model.manifest["apply"]["noise_std"]
    wall, cpu = time.perf_counter(), _cpu_seconds()
    sets = {
        name: compare(lambda y: {"model": model(y)}, load_benchmark(name, root), sigma, seed, name)
        for name in SETS
    }
    figures = {"wall_seconds": time.perf_counter() - wall, "cpu_seconds": _cpu_seconds() - cpu}
    return {"sigma": sigma, "steps": model.steps, "command": command, **figures, "sets": sets}


def _benchmark_section(bench: dict) -> list[str]:
    """The card's section on the standard test sets (model and BM3D side by side)."""
    sigma255 = round(bench["sigma"] * 255)
    published = PUBLISHED_BSD68.get(sigma255, {}).get("BM3D")
    rows = [
        f"| {name} | {s['images']} | {s['model']['psnr']['model']:.2f} | {s['model']['seconds']:.0f} | "
        f"{s['BM3D']['psnr']['BM3D']:.2f} | {s['BM3D']['seconds']:.0f} |"
        for name, s in bench["sets"].items()
    ]
    return [
        SECTION,
        "",
        f"Whole images, Gaussian noise of std {sigma255}/255 (image i of a set drawn with seed "
        f"{next(iter(bench['sets'].values()))['noise_seed']} + i); the model at {bench['steps']} iterations "
        "and BM3D (PyPI `bm3d`, told the true std) restore the same noisy images in the same process. Mean "
        "PSNR over each set, outputs clipped to [0, 1]; time: wall seconds on one thread of a shared 2-core "
        "CPU.",
        "",
        "| set | images | model PSNR (dB) | model time (s) | BM3D PSNR (dB) | BM3D time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        *(
            [f"Published BM3D on BSD68 at sigma {sigma255}: {published} dB (`../shared/data/README.md`)."]
            if published is not None
            else []
        ),
        f"Measured by `{bench['command']}` ({bench['wall_seconds']:.0f} s wall, {bench['cpu_seconds']:.0f} s "
        "CPU).",
        "",
    ]


def _add_benchmarks(target: Path, bench: dict) -> None:
    """Rewrite ``target/CARD.md`` with ``bench``: its section (before the CI subset), its JSON block."""
    card, data = (target / "CARD.md").read_text(), read_card(target)
    head, subset = card.split("## Subset re-checked by CI", 1)
    head = head.split(SECTION, 1)[0]
    body = subset.split("```json\n", 1)[0]
    data["benchmarks"] = bench
    text = "\n".join([head + "\n".join(_benchmark_section(bench)), "## Subset re-checked by CI" + body])
    with atomic_path(target / "CARD.md") as path:
        path.write_text(text + "```json\n" + json.dumps(data, indent=1) + "\n```\n")


def main(argv: list[str] | None = None) -> int:
    """Train, copy the implicit model into the package, write and print its card."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--backend", choices=("torch", "jax"), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="train on this folder of clean images (deq run's --data)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="deq run's --set")
    parser.add_argument("--dest", type=Path, default=DEST, help=f"where the model goes (default {DEST})")
    parser.add_argument("--keep", type=Path, help="keep the whole run here (default: a temporary folder)")
    parser.add_argument("--benchmarks", type=Path, default=BENCHMARKS, help="folder holding Set12/, BSD68/")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="denoise: re-evaluate DEST/T-B on Set12 and BSD68 only"
    )
    args = parser.parse_args(argv)
    if args.evaluate_only:
        if args.task != "denoise" or args.data or args.set or args.keep:
            parser.error(
                "--evaluate-only re-evaluates a denoise model folder; it takes no --data/--set/--keep"
            )
        target = args.dest / f"{args.task}-{args.backend}"
        command = (
            f"OMP_NUM_THREADS=1 python {SCRIPT} --task denoise --backend {args.backend} --seed {args.seed}"
        )
        command += " --evaluate-only"
        bench = _benchmark(load_model(target), args.benchmarks, args.seed + NOISE_SEED, command)
        _add_benchmarks(target, bench)
        print(json.dumps(bench, indent=1))
        return 0
    if smoke() and args.dest == DEST:
        parser.error("DEQ_SMOKE is set: a smoke model would replace the shipped one; give --dest elsewhere")
    extra = [arg for item in args.set for arg in ("--set", item)]
    extra += ["--data", args.data] if args.data else []
    command = " ".join(
        ["OMP_NUM_THREADS=1 python", SCRIPT, "--task", args.task, "--backend", args.backend]
        + ["--seed", str(args.seed), *extra]
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "run"
        wall, cpu = time.perf_counter(), _cpu_seconds()
        argv_run = ["run", "imaging", "--task", args.task, "--quick", "--backend", args.backend, *extra]
        code = cli.main([*argv_run, "--seed", str(args.seed), "--threads", "1", "--out", str(out)])
        if code:
            return code
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        report = json.loads((out / "report.json").read_text())
        target = args.dest / f"{args.task}-{args.backend}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(out / "models" / "implicit", target)
    model = load_model(target)
    manifest = model.manifest
    headline = report["quality"]["implicit"][report["iterations"].index(manifest["metrics"]["steps"])]
    if manifest["metrics"]["psnr"] != headline:
        raise ModelFileError(f"{target}: PSNR is not the report's {headline} at the training budget")
    config = dict(manifest["config"])
    if config.get("data") is not None:  # deq run resolved it; the card keeps it relative to the repository
        config["data"] = os.path.relpath(config["data"], ROOT)
    recipe = {"task": args.task, "config": config, "seed": args.seed, "count": SUBSET}
    scores = subset_metrics(model, recipe, ROOT)
    size = sum(p.stat().st_size for p in target.iterdir())
    figures = {
        "seed": args.seed,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "params": report["params"]["implicit"],
        "bytes": size,
    }
    (target / "CARD.md").write_text(_card(manifest, report, figures, recipe, scores, command))
    bench = None
    if args.task == "denoise":
        bench = _benchmark(model, args.benchmarks, args.seed + NOISE_SEED, command)
        _add_benchmarks(target, bench)
    print(f"wrote {target} ({size} bytes)")
    print(
        json.dumps({**figures, "test": manifest["metrics"], "subset": scores, "benchmarks": bench}, indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
