"""Stiffness assembly against scikit-fem: P1 and P2 on the unit square, same mesh and coefficient, one run.

Every case assembles ``int a grad u . grad v`` with ``a(x, y) = 1 + x + y`` given at each library's own
quadrature points (degree 2p, exact for this integrand), on the same triangles; setup (basis tabulation,
geometry, sparsity pattern) is excluded for everyone. scikit-fem and our numpy reference return a scipy CSR
matrix; the torch and JAX paths return the values on a precomputed CSR pattern (what a training loop uses).
Agreement with scikit-fem is the relative error of the matrix for P1 (same vertex numbering) and of the
sorted diagonal for P2 (dof numbering differs). Writes ``--out``.json/.md::

    OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \\
        python packages/deq-pde/benchmarks/assembly_peers.py --out results/assembly
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import skfem
from skfem.helpers import dot, grad

from deq_core.analysis.timing import interleaved_medians, write_results
from deq_pde.operators import FunctionSpace, stiffness, unit_square

COLUMNS = ["mesh", "element", "dofs", "case", "ms", "vs scikit-fem", "rel. diff vs scikit-fem"]


def coefficient(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The smooth test coefficient ``1 + x + y``."""
    return 1.0 + x + y


@skfem.BilinearForm
def _weighted_laplace(u, v, w):
    return w["a"] * dot(grad(u), grad(v))


def scikit_fem_case(space: FunctionSpace) -> tuple[Callable[[], sp.csr_matrix], np.ndarray]:
    """scikit-fem's assembly on our mesh: the call, and its matrix."""
    mesh = skfem.MeshTri(space.mesh.points.T.copy(), space.mesh.cells.T.copy())
    element = skfem.ElementTriP1() if space.degree == 1 else skfem.ElementTriP2()
    basis = skfem.Basis(mesh, element, intorder=space.quadrature_degree)
    x, y = basis.global_coordinates()
    a = coefficient(np.asarray(x), np.asarray(y))
    run = lambda: skfem.asm(_weighted_laplace, basis, a=a)
    return run, run()


def agreement(ours: sp.csr_matrix, theirs: sp.csr_matrix, degree: int) -> float:
    """Relative difference: whole matrix for P1, sorted diagonal for P2 (other dof numbering)."""
    if degree == 1:
        return float(sp.linalg.norm(ours - theirs) / sp.linalg.norm(theirs))
    a, b = np.sort(ours.diagonal()), np.sort(theirs.diagonal())
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def backend_cases(space: FunctionSpace, a_quad: np.ndarray) -> dict[str, tuple[Callable, Callable]]:
    """Each installed backend's assembly: ``(call, to_csr)`` where ``to_csr`` rebuilds the matrix once."""
    pattern = space.pattern
    to_csr = lambda values: sp.csr_matrix(
        (np.asarray(values), pattern.indices, pattern.indptr), shape=(space.num_dofs,) * 2
    )
    cases = {}
    if importlib.util.find_spec("torch"):
        import torch

        from deq_pde.operators.torch import TorchAssembler

        torch.set_num_threads(1)
        assembler, a = TorchAssembler(space), torch.from_numpy(a_quad)
        assembler.stiffness(a)  # constants move to the device once
        cases["deq-pde torch (values on pattern)"] = (lambda: assembler.stiffness(a), to_csr)
    if importlib.util.find_spec("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        from deq_pde.operators.jax import JaxAssembler

        assemble, a = jax.jit(JaxAssembler(space).stiffness), jax.numpy.asarray(a_quad)
        assemble(a).block_until_ready()  # compile outside the timing
        cases["deq-pde JAX (jit, values on pattern)"] = (lambda: assemble(a).block_until_ready(), to_csr)
    return cases


def rows_for(n: int, degree: int, repeats: int) -> list[dict]:
    """Time and compare every case on an ``n`` x ``n`` mesh of degree ``degree``."""
    space = FunctionSpace(unit_square(n), degree)
    _ = space.pattern, space.stiffness_kernel  # setup, excluded
    a_quad = space.at_quadrature(coefficient)
    skfem_run, reference = scikit_fem_case(space)
    cases = {"scikit-fem asm": (skfem_run, lambda m: m)}
    cases["deq-pde numpy/scipy reference"] = (lambda: stiffness(space, a_quad), lambda m: m)
    cases.update(backend_cases(space, a_quad))
    medians = interleaved_medians({k: call for k, (call, _) in cases.items()}, repeats=repeats)
    base = medians["scikit-fem asm"]
    return [
        {
            "mesh": f"{n}x{n}",
            "element": f"P{degree}",
            "dofs": space.num_dofs,
            "case": name,
            "ms": 1e3 * medians[name],
            "vs scikit-fem": medians[name] / base,
            "rel. diff vs scikit-fem": agreement(to_csr(call()), reference, degree),
        }
        for name, (call, to_csr) in cases.items()
    ]


def main() -> None:
    """Run every mesh size and degree; write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--degrees", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="results/assembly")
    args = parser.parse_args()
    rows = [row for n in args.sizes for p in args.degrees for row in rows_for(n, p, args.repeats)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "scikit-fem": skfem.__version__,
    }
    print(write_results(rows, COLUMNS, args.out, meta))


if __name__ == "__main__":
    main()
