"""Train the shipped pretrained ``darcy`` model (the FNO-DEQ) and write its model card.

    OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \\
        python packages/deq-pde/benchmarks/train_pretrained.py --backend torch --seed 0

runs ``deq run pde --task darcy --quick --set epochs=4 --backend B --seed S --threads 1`` (the CLI's own
run, so the model is exactly the one a user's run of that config makes; 4 of the quick config's 12 epochs
keep it near 10 CPU-minutes at one thread), copies ``OUT/models/implicit`` (the report's headline model)
into ``src/deq_pde/pretrained/darcy-B/`` and writes ``CARD.md`` there: the command, seed, training wall
and CPU time, parameter count, size, the run's test metrics, and the error on the first ``SUBSET`` test
fields that ``tests/test_pretrained.py`` re-checks. The figures are printed too.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from deq_core import cli
from deq_core.domains import smoke
from deq_core.errors import ModelFileError
from deq_pde import load_model
from deq_pde.pretrained import subset_metrics

TASK = "darcy"
SETTINGS = ("epochs=4",)  # --set overrides of the quick config
SUBSET = 8  # the first SUBSET fields of the run's test set: dataset samples n_train .. n_train + SUBSET - 1
DEST = Path(__file__).resolve().parents[1] / "src" / "deq_pde" / "pretrained"
SCRIPT = "packages/deq-pde/benchmarks/train_pretrained.py"


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the data workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _card(manifest: dict, figures: dict, recipe: dict, subset: dict, command: str) -> str:
    """CARD.md: what the model is, how it was made, and its figures (a JSON block the CI test reads)."""
    config, metrics, data = manifest["config"], manifest["metrics"], manifest["apply"]["data"]
    overrides = " ".join(f"--set {setting}" for setting in SETTINGS)
    budgets = ", ".join(
        f"{k}: {e:.4g}"
        for k, e in zip(manifest["apply"]["budgets"], metrics["rel_l2_per_budget"], strict=True)
    )
    lines = [
        f"# pde/{TASK} pretrained model ({manifest['backend']})",
        "",
        f"The FNO-DEQ (`{manifest['model_class']}`, the implicit model) whose relative L2 error is the "
        f"headline of the `pde/{TASK}` report: {manifest['apply']['problem']}.",
        "",
        f"- task: `pde/{TASK}`, {config['grid_size']}x{config['grid_size']} grid "
        f"({manifest['apply']['grid']})",
        f"- data: {config['n_train']} training and {config['n_test']} test fields: dataset samples "
        f"0 .. {config['n_train'] + config['n_test'] - 1} of `deq_pde.datasets.darcy.darcy_sample("
        f"DarcyConfig(**data), index)` with data = `{json.dumps(data)}` (GRF seed {data['seed']}, "
        "FEM labels), the test fields last",
        f"- command: `{command}`",
        f"- same as: `deq run pde --task {TASK} --quick {overrides} --backend {manifest['backend']} "
        f"--seed {figures['seed']} --threads 1` (then `OUT/models/implicit`)",
        f"- seed: {figures['seed']}",
        f"- training: {figures['wall_seconds']:.0f} s wall, {figures['cpu_seconds']:.0f} s CPU "
        "(the whole run: data, the FNO-DEQ and the explicit FNO, evaluation, classical solvers), one thread",
        f"- parameters: {figures['params']}",
        f"- size: {figures['bytes']} bytes",
        f"- test-time budget: {manifest['apply']['steps']} iterations from zero",
        "",
        f"## Test metrics ({config['n_test']} test fields)",
        "",
        f"- rel. L2 at {metrics['steps']} iterations: {metrics['rel_l2']:.6g}",
        f"- rel. L2 per budget: {budgets}",
        "",
        f"## Subset re-checked by CI (first {SUBSET} test fields)",
        "",
        f"`deq_pde.pretrained.subset(recipe)` rebuilds samples {recipe['start']} .. "
        f"{recipe['start'] + SUBSET - 1} (the first {SUBSET} test fields) with their FEM solutions; "
        "`tests/test_pretrained.py` checks the model's mean rel. L2 on them within 2% of:",
        "",
        f"- rel. L2 at {subset['steps']} iterations: {subset['rel_l2']:.6g}",
        "",
        "```json",
        json.dumps({"subset": recipe, "subset_metrics": subset}, indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Train, copy the implicit model into the package, write and print its card."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("torch", "jax"), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dest", type=Path, default=DEST, help=f"where the model goes (default {DEST})")
    parser.add_argument("--keep", type=Path, help="keep the whole run here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if smoke() and args.dest == DEST:
        parser.error("DEQ_SMOKE is set: a smoke model would replace the shipped one; give --dest elsewhere")
    command = f"OMP_NUM_THREADS=1 python {SCRIPT} --backend {args.backend} --seed {args.seed}"
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "run"
        wall, cpu = time.perf_counter(), _cpu_seconds()
        argv_run = ["run", "pde", "--task", TASK, "--quick", "--backend", args.backend]
        argv_run += [word for setting in SETTINGS for word in ("--set", setting)]
        code = cli.main([*argv_run, "--seed", str(args.seed), "--threads", "1", "--out", str(out)])
        if code:
            return code
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        report = json.loads((out / "report.json").read_text())
        target = args.dest / f"{TASK}-{args.backend}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(out / "models" / "implicit", target)
    model = load_model(target)
    manifest = model.manifest
    headline = report["quality"]["implicit"][report["iterations"].index(model.steps)]
    if manifest["metrics"]["rel_l2"] != headline:
        raise ModelFileError(f"{target}: rel. L2 is not the report's {headline} at {model.steps} iterations")
    recipe = {"data": manifest["apply"]["data"], "start": manifest["config"]["n_train"], "count": SUBSET}
    subset = subset_metrics(model, recipe)
    size = sum(p.stat().st_size for p in target.iterdir())
    figures = {
        "seed": args.seed,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "params": report["params"]["implicit"],
        "bytes": size,
    }
    (target / "CARD.md").write_text(_card(manifest, figures, recipe, subset, command))
    print(f"wrote {target} ({size} bytes)")
    print(json.dumps({**figures, "test": manifest["metrics"], "subset": subset}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
