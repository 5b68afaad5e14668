"""Radon transform against scikit-image: agreement, and forward + adjoint time at 256x256 (batch 1 and 16).

Measures whichever backend is installed (torch and/or JAX, jitted) against ``skimage.transform.radon`` and
``iradon(filter_name=None)`` (its unfiltered back-projection, the adjoint up to scale), on the same images
in one run, with interleaved repeats; writes ``--out``.json/.md::

    OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \\
        python packages/deq-imaging/benchmarks/radon_speed.py --out results/radon
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
from skimage.transform import iradon, radon

from deq_core.analysis.timing import interleaved_medians, write_results
from deq_imaging.datasets import shepp_logan

COLUMNS = ["operator", "case", "batch", "ms", "vs skimage", "rel. error vs skimage"]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """Relative Frobenius error ``|a - b| / |b|``."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def backends(n: int, device: str) -> dict[str, tuple[Callable, Callable, Callable]]:
    """Each installed backend's Radon as ``(to_array, forward, adjoint)`` on ``(batch, 1, n, n)`` float32.

    torch runs on ``device``; JAX on its default device (the GPU when its CUDA build is installed).
    """
    found = {}
    if importlib.util.find_spec("torch"):
        import torch

        from deq_imaging.operators import torch as T

        torch.set_num_threads(1)
        op = T.Radon(n)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def timed(fn: Callable) -> Callable:
            return lambda a: (fn(a), sync())[0]

        found[f"deq-imaging torch ({device})"] = (
            lambda a: torch.as_tensor(a, device=device),
            timed(op.forward),
            timed(op.adjoint),
        )
    if importlib.util.find_spec("jax"):
        import jax
        import jax.numpy as jnp

        from deq_imaging.operators import jax as J

        op = J.Radon(n)
        fwd, adj = jax.jit(op.forward), jax.jit(op.adjoint)
        found["deq-imaging JAX (jit)"] = (
            jnp.asarray,
            lambda x: fwd(x).block_until_ready(),
            lambda y: adj(y).block_until_ready(),
        )
    return found


def main() -> None:
    """Time skimage and every installed backend on the same batches; write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/radon")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    args = parser.parse_args()
    n = args.size
    phantom = shepp_logan(n)[0, 0].astype(np.float64)
    reference = radon(phantom, circle=True)
    ours = backends(n, args.device)
    if not ours:
        raise SystemExit("neither torch nor jax is installed: nothing to compare with skimage")
    rng = np.random.default_rng(0)
    rows = []
    for b in args.batches:
        images = (rng.random((b, 1, n, n)) * phantom).astype(np.float32)
        sinograms = np.stack([radon(im[0], circle=True) for im in images])[:, None].astype(np.float32)

        def skimage_pair(images=images, sinograms=sinograms) -> None:
            for im, sino in zip(images, sinograms, strict=True):
                radon(im[0], circle=True)
                iradon(sino[0], filter_name=None, circle=True)

        cases = {"skimage radon + iradon(filter=None)": skimage_pair}
        for name, (to_array, forward, adjoint) in ours.items():
            x, y = to_array(images), to_array(sinograms)
            cases[name] = lambda x=x, y=y, f=forward, a=adjoint: (f(x), a(y))
        medians = interleaved_medians(cases, repeats=args.repeats)
        base = medians["skimage radon + iradon(filter=None)"]
        for name, seconds in medians.items():
            row = {"operator": f"Radon {n}x{n}, 180 angles", "case": name, "batch": b, "ms": 1e3 * seconds}
            row["vs skimage"] = seconds / base
            if name in ours:
                to_array, forward, _ = ours[name]
                sino = forward(to_array(phantom[None, None].astype(np.float32)))
                sino = np.asarray(sino.cpu() if hasattr(sino, "cpu") else sino)[0, 0]
                row["rel. error vs skimage"] = rel(sino, reference)
            rows.append(row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "processor": platform.processor(), "size": n}
    print(write_results(rows, COLUMNS, args.out, meta))


if __name__ == "__main__":
    main()
