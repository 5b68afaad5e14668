"""Denoising benchmark (not CI): train DEQ-HQS on Train400, report average PSNR on BSD68 and Set12.

For each noise level sigma (0-255 scale) a DEQ-HQS denoiser (identity operator, residual CNN) is trained on
random Train400 patches with the warm-started bank recipe and implicit differentiation (PyTorch), then
evaluated at the training budget K and at 2K on the full BSD68 and Set12 images; BM3D (PyPI ``bm3d``,
told the true sigma) runs on the same noisy images in the same session. Published BSD68 averages are
printed beside them. Sized by steps, never by time::

    OMP_NUM_THREADS=1 python packages/deq-imaging/benchmarks/denoise_bsd68.py --steps 20000 --device cuda
    python packages/deq-imaging/benchmarks/denoise_bsd68.py --steps 3 --max-images 2 --sigmas 25  # tiny
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import numpy as np
import torch

from deq_imaging.backends import load
from deq_imaging.datasets import load_benchmark
from deq_imaging.datasets.problem import OperatorSpec, Problem
from deq_imaging.evaluation.benchmarks import PUBLISHED_BSD68, compare
from deq_imaging.models.config import ImagingConfig
from deq_imaging.models.torch import ImplicitNet, build_cell
from deq_imaging.models.training.recipe import train_implicit
from deq_imaging.operators import gaussian_noise

ROOT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "images"


def _problem(train, sigma: float, seed: int) -> Problem:
    """A denoising problem whose training patches come from Train400 (val/test unused by training)."""
    val = train.patches(2, 40, seed, flips=False)
    spec = OperatorSpec("identity")
    measure = gaussian_noise(val.astype(np.float64), sigma, seed).astype(np.float32)
    return Problem(
        "denoise",
        spec,
        sigma,
        lambda n, size, draw: train.patches(n, size, seed + draw),
        val,
        measure,
        val,
        measure,
    )


def _evaluate(model: ImplicitNet, images, sigma: float, budgets: list[int], device: str, seed: int) -> dict:
    """Mean PSNR of the DEQ at each budget and of BM3D on the same noisy versions of ``images``."""

    def deq(y):
        outputs = {}
        with torch.no_grad():
            yt = torch.as_tensor(y, device=device)
            cell, z, done = model.deq.cell, model.deq.cell.init(yt), 0
            for t in budgets:
                for _ in range(t - done):
                    z = cell(z, yt)
                done = t
                outputs[f"DEQ t={t}"] = z.cpu().numpy()
        return outputs

    result = compare(deq, images, sigma, seed, "DEQ")
    return {**result["model"]["psnr"], **result["BM3D"]["psnr"]} | {
        "seconds": {"DEQ": result["model"]["seconds"], "BM3D": result["BM3D"]["seconds"]}
    }


def main() -> None:
    """Parse arguments, train one model per sigma, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="folder holding Train400/, BSD68/, Set12/")
    parser.add_argument("--sigmas", type=int, nargs="+", default=[15, 25, 50], help="noise std on 0-255")
    parser.add_argument("--steps", type=int, default=20000, help="optimizer steps per sigma")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=40)
    parser.add_argument("--bank", type=int, default=1024)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=8, help="training budget K (evaluated at K and 2K)")
    parser.add_argument("--max-images", type=int, default=None, help="evaluate on the first N images only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.root.is_dir():
        raise SystemExit(f"benchmark images not found under {args.root} (pass --root)")
    train = load_benchmark("Train400", args.root)
    tests = {name: load_benchmark(name, args.root) for name in ("BSD68", "Set12")}
    if args.max_images:
        tests = {n: s.subset(s.names[: args.max_images]) for n, s in tests.items()}
    hardware = (
        torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({platform.processor() or 'cpu'})"
    )
    print(f"hardware: {hardware}, torch threads {torch.get_num_threads()}, steps {args.steps} per sigma")
    budgets = [1, args.max_iter, 2 * args.max_iter]
    for sigma255 in args.sigmas:
        sigma = sigma255 / 255
        cfg = ImagingConfig(
            patch_size=args.patch,
            noise=sigma,
            features=args.features,
            depth=args.depth,
            mu0=1.0,
            sigma0=sigma,
            max_iter=args.max_iter,
            bank_size=args.bank,
            refresh=max(1, args.batch // 8),
            batch=args.batch,
            steps=args.steps,
            budgets=tuple(budgets),
        )
        torch.manual_seed(args.seed)
        problem = _problem(train, sigma, args.seed)
        backend = load("torch", args.device)
        model = backend.place(ImplicitNet(build_cell(problem.spec, cfg), cfg.solve))
        start = time.perf_counter()
        model, _ = train_implicit(backend, model, dataclasses.replace(problem), cfg, args.seed)
        train_seconds = time.perf_counter() - start
        model.eval()
        for name, images in tests.items():
            result = _evaluate(model, images, sigma, budgets, args.device, args.seed + 100)
            published = PUBLISHED_BSD68[sigma255] if name == "BSD68" and sigma255 in PUBLISHED_BSD68 else {}
            deq = "  ".join(f"{k} {v:.2f}" for k, v in result.items() if k.startswith("DEQ"))
            ref = ", ".join(f"{k} {v:.2f}" for k, v in published.items()) or "-"
            print(
                f"sigma {sigma255:>2} {name:<5} ({len(images)} images): {deq}"
                f"  BM3D(here) {result['BM3D']:.2f}  | published: {ref}  | train {train_seconds:.0f} s,"
                f" test DEQ {result['seconds']['DEQ']:.0f} s BM3D {result['seconds']['BM3D']:.0f} s"
            )


if __name__ == "__main__":
    main()
