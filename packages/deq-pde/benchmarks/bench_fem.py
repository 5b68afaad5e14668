"""Timings of FEM assembly and solves (numpy/scipy, torch, JAX on CPU) and Darcy data-generation throughput.

Run with one thread, e.g. ``OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python
benchmarks/bench_fem.py``; backends whose framework is not installed are skipped.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import importlib.util
import tempfile
import time

import numpy as np

from deq_pde.baselines import cg_amg, direct
from deq_pde.datasets import DarcyConfig, generate_darcy, load_darcy
from deq_pde.operators import DarcyProblem, FunctionSpace, gaussian_random_field, stiffness, unit_square


def best_of(fn, repeats: int) -> tuple[float, object]:
    """Fastest wall time of ``repeats`` calls and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_case(n: int, degree: int, backends: list[str], repeats: int, tol: float) -> None:
    """One mesh size and degree: setup, assembly and solve per backend."""

    def setup() -> FunctionSpace:
        space = FunctionSpace(unit_square(n), degree)
        _ = space.pattern, space.stiffness_kernel
        return space

    t_setup, space = best_of(setup, 1)
    problem = DarcyProblem(space)
    coef = problem.coefficient(gaussian_random_field(np.random.default_rng(0), n + 1))
    tag = f"n={n:<4d} P{degree} dofs={space.num_dofs:<7d}"
    print(f"{tag} setup (geometry, tabulation, pattern): {t_setup:.3f}s", flush=True)
    if "numpy" in backends:
        t_asm, matrix = best_of(lambda: stiffness(space, coef), repeats)
        reduced, rhs = problem.bc.reduce(matrix, problem.rhs)
        t_lu, res_lu = best_of(lambda: direct(reduced, rhs), 1)
        t_amg, res_amg = best_of(lambda: cg_amg(reduced, rhs, tol=tol), 1)
        print(
            f"{tag} numpy: assemble {t_asm * 1e3:8.1f} ms | splu(COLAMD) {t_lu * 1e3:8.1f} ms | "
            f"AMG-CG {t_amg * 1e3:8.1f} ms ({res_amg.iterations} it)",
            flush=True,
        )
    if "torch" in backends:
        import torch

        from deq_pde.operators.torch import TorchAssembler

        asm = TorchAssembler(space)
        a = torch.from_numpy(coef)
        rhs_t = torch.from_numpy(problem.rhs)
        asm.stiffness(a)  # move constants
        t_asm, values = best_of(lambda: asm.stiffness(a), repeats)
        batch = a.expand(4, *a.shape).contiguous()
        t_asm4, _ = best_of(lambda: asm.stiffness(batch), repeats)
        vals, lifted = asm.dirichlet(values, rhs_t, problem.bc)
        t_cg, u = best_of(lambda: asm.solve(vals, lifted, tol=tol), 1)
        err = (
            np.abs(problem.bc.expand(res_lu.solution) - u.numpy()).max()
            if "numpy" in backends
            else float("nan")
        )
        print(
            f"{tag} torch: assemble {t_asm * 1e3:8.1f} ms (B=4: {t_asm4 * 1e3:8.1f} ms) | "
            f"Jacobi-PCG {t_cg * 1e3:9.1f} ms (max |u - u_lu| {err:.1e})",
            flush=True,
        )
    if "jax" in backends:
        import jax

        jax.config.update("jax_enable_x64", True)
        from deq_pde.operators.jax import JaxAssembler

        asm = JaxAssembler(space)
        a = jax.numpy.asarray(coef)
        assemble = jax.jit(asm.stiffness)
        solve = jax.jit(
            lambda c: asm.solve(*asm.dirichlet(asm.stiffness(c), problem.rhs, problem.bc), tol=tol)
        )
        assemble(a).block_until_ready()
        t_asm, _ = best_of(lambda: assemble(a).block_until_ready(), repeats)
        batch = jax.numpy.stack([a] * 4)
        assemble(batch).block_until_ready()
        t_asm4, _ = best_of(lambda: assemble(batch).block_until_ready(), repeats)
        t_compile, _ = best_of(lambda: solve(a).block_until_ready(), 1)
        t_cg, u = best_of(lambda: solve(a).block_until_ready(), 1)
        err = (
            np.abs(problem.bc.expand(res_lu.solution) - np.asarray(u)).max()
            if "numpy" in backends
            else float("nan")
        )
        print(
            f"{tag} jax:   assemble {t_asm * 1e3:8.1f} ms (B=4: {t_asm4 * 1e3:8.1f} ms) | "
            f"assemble+Jacobi-PCG {t_cg * 1e3:9.1f} ms "
            f"(first call {t_compile:.1f}s, max |u - u_lu| {err:.1e})",
            flush=True,
        )


def bench_generation(num_samples: int, workers: int) -> None:
    """Samples per second for 33 x 33 Darcy data on a process pool of ``workers``."""
    config = DarcyConfig(grid_size=33, chunk_size=8)
    with tempfile.TemporaryDirectory() as folder:
        with cf.ProcessPoolExecutor(workers) as pool:
            list(pool.map(abs, range(workers)))  # start the workers outside the timing
            start = time.perf_counter()
            generate_darcy(folder, num_samples, config, executor=pool, progress=False)
            elapsed = time.perf_counter() - start
        coef, sol = load_darcy(folder)
    print(
        f"darcy 33x33 P1 generation: {num_samples} samples, {workers} workers: {elapsed:.2f}s "
        f"= {num_samples / elapsed:.1f} samples/s (solution range {sol.min():.3f}..{sol.max():.3f})",
        flush=True,
    )


def main() -> None:
    """Parse options and run the requested benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--degrees", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=["numpy", "torch", "jax"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--samples", type=int, default=256, help="Darcy samples for throughput (0 to skip)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    backends = [b for b in args.backends if b == "numpy" or importlib.util.find_spec(b) is not None]
    for n in args.sizes:
        for degree in args.degrees:
            bench_case(n, degree, backends, args.repeats, args.tol)
    if args.samples:
        bench_generation(args.samples, args.workers)


if __name__ == "__main__":
    main()
