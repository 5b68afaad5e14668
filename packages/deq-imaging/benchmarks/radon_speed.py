"""Radon transform: relative error against skimage and CPU timings of forward + adjoint at 256x256.

Run in a torch venv and/or a JAX venv (whichever backends are importable are measured):

    OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python benchmarks/radon_speed.py
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable

import numpy as np
from skimage.transform import iradon, radon

from deq_imaging.datasets import shepp_logan


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in seconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    """Print the error table and the timing table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.size
    phantom = shepp_logan(n)
    sk = radon(phantom[0, 0].astype(np.float64), circle=True)
    rows = []
    rng = np.random.default_rng(0)
    images = {b: (rng.random((b, 1, n, n)) * phantom).astype(np.float32) for b in args.batches}

    def sk_fwd(b: int) -> Callable[[], object]:
        return lambda: [radon(im[0], circle=True) for im in images[b]]

    sinos = {b: np.stack([radon(im[0], circle=True) for im in images[b]]) for b in args.batches}

    def sk_adj(b: int) -> Callable[[], object]:
        return lambda: [iradon(s, filter_name=None, circle=True) for s in sinos[b]]

    for b in args.batches:
        rows.append(("skimage radon / iradon(filter=None)", b, best_of(sk_fwd(b), 1), best_of(sk_adj(b), 1)))

    if importlib.util.find_spec("torch"):
        import torch

        from deq_imaging.operators import torch as T

        op = T.Radon(n)
        ours = op.forward(torch.as_tensor(phantom, dtype=torch.float64))[0, 0].numpy()
        print(f"torch: relative error vs skimage.radon (Shepp-Logan {n}): {rel(ours, sk):.2e}")
        err = rel(iradon(ours, circle=True), phantom[0, 0])
        print(f"torch: skimage iradon of our sinogram vs the phantom, relative error: {err:.4f}")
        torch.set_num_threads(1)
        for b in args.batches:
            x = torch.as_tensor(images[b])
            y = op.forward(x)
            rows.append(
                (
                    "torch (float32)",
                    b,
                    best_of(lambda x=x: op.forward(x), args.repeats),
                    best_of(lambda y=y: op.adjoint(y), args.repeats),
                )
            )

    if importlib.util.find_spec("jax"):
        import jax
        import jax.numpy as jnp

        from deq_imaging.operators import jax as J

        op = J.Radon(n)
        fwd, adj = jax.jit(op.forward), jax.jit(op.adjoint)
        ours = np.asarray(fwd(jnp.asarray(phantom)))[0, 0]
        print(f"jax: relative error vs skimage.radon (Shepp-Logan {n}, float32): {rel(ours, sk):.2e}")
        for b in args.batches:
            x = jnp.asarray(images[b])
            y = fwd(x)
            rows.append(
                (
                    "jax (float32, jit)",
                    b,
                    best_of(lambda x=x: fwd(x).block_until_ready(), args.repeats),
                    best_of(lambda y=y: adj(y).block_until_ready(), args.repeats),
                )
            )

    print(f"\nRadon {n}x{n}, 180 angles, CPU, best of runs (seconds)")
    print(f"{'implementation':38s} {'batch':>5s} {'forward':>9s} {'adjoint':>9s}")
    for name, b, tf, ta in rows:
        print(f"{name:38s} {b:5d} {tf:9.3f} {ta:9.3f}")


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """Relative Frobenius error ``|a - b| / |b|``."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


if __name__ == "__main__":
    main()
