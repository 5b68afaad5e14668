"""Bytes autograd saves for backward: implicit, unrolled and reversible, by iteration count (PyTorch).

    python packages/deq-core/benchmarks/memory.py [--iters 10 200 1000]

Counts every tensor packed through ``torch.autograd.graph.saved_tensors_hooks`` during the forward solve
of a tanh DEQ cell (d=256, batch 64, exactly ``t`` evaluations of the cell: ``t`` Picard iterations, or
``(t - 1) // 2`` coupled steps of the reversible solve). Only bytes are measured: at ``tol=0`` the longest
reversible runs iterate far past convergence, where its gradient is not meaningful (see
:mod:`deq_core.engine.reversible`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from deq_core.analysis.timing import write_results
from deq_core.torch import fixed_point
from deq_core.torch.memory import saved_bytes

BACKWARDS = ("implicit", "unroll", "reversible")


def solve_bytes(backward: str, iters: int, d: int = 256, batch: int = 64) -> int:
    """Bytes saved for backward by one solve of ``iters`` iterations."""
    torch.manual_seed(0)
    W = torch.randn(d, d)
    W = (0.9 * W / torch.linalg.matrix_norm(W, 2)).requires_grad_()
    x = torch.randn(batch, d, requires_grad=True)
    f, z0 = lambda z, x: torch.tanh(z @ W.T + x), torch.zeros(batch, d)
    return saved_bytes(
        lambda: fixed_point(f, z0, x, solver="picard", backward=backward, tol=0.0, max_iter=iters)
    )


def main() -> None:
    """Print the memory table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, nargs="+", default=[10, 200, 1000])
    parser.add_argument("--out", default="results/memory_torch")
    args = parser.parse_args()
    rows = []
    for t in args.iters:
        row = {"iterations": t, **{f"{b} bytes": solve_bytes(b, t) for b in BACKWARDS}}
        for b in BACKWARDS[1:]:
            row[f"{b}/implicit"] = row[f"{b} bytes"] / row["implicit bytes"]
        rows.append(row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "problem": "tanh cell d=256 batch 64, exactly t evaluations of f"}
    print(write_results(rows, list(rows[0]), args.out, meta))


if __name__ == "__main__":
    main()
