"""deq-core (PyTorch) against torchdeq and a hand-written Picard loop, on the same problems in one run.

    python packages/deq-core/benchmarks/peers_torch.py [--repeats 7] [--out results/peers_torch]

Rows: forward solves of a tanh cell (d = 256 and 2048, batch 64, spectral radius 0.9 and 0.98) and of a small
conv DEQ; a per-sample early-exit group; and training steps (forward + backward) with each library's exact
(implicit) gradient, forward and backward by Picard and by Anderson to 1e-6 in both libraries, and
torchdeq's default one-step gradient.

The per-sample early-exit group ("tanh rates 0.3-0.99", d = 2048, d = 256 under ``--quick``) solves
``z_i -> tanh(r_i W z_i + x_i)`` with a symmetric ``||W||_2 = 1`` and per-sample rates
``r = linspace(0.3, 0.99, 64)`` carried as the last column of the per-sample data, so samples need from a few
to about a hundred iterations. deq-core's ``DEQ`` module (which evaluates the cell only on the samples not yet
converged) is timed next to ``fixed_point`` (which freezes converged samples but evaluates the whole batch),
torchdeq (which stops on one residual of the whole batch, so every sample runs as long as the batch), the
hand-written batch loop and, as this group's floor, a hand-written loop that drops each sample's rows once
it has converged.

Libraries define tolerances differently, so each forward solver runs at the loosest tolerance of its own that
still reaches the achieved residual ``max_batch ||f(z) - z|| / ||f(z)|| <= 1e-4``: rows compare equal
accuracy, not equal settings. Every row reports the median time over interleaved repeats, the ratios against
the group's floor and torchdeq's two solvers, the f evaluations (rows of the batch evaluated, per sample,
mean), the achieved residual and the tolerance set, and for training steps the gradient's relative error
against long unrolled autograd in float64.
Needs ``torchdeq`` (``pip install torchdeq``); absolute times are for ratios only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deq_core import Implicit
from deq_core.analysis.timing import interleaved_medians, loosest_tolerance, write_results
from deq_core.torch import DEQ, fixed_point

TOL = 1e-4  # the achieved residual every forward solve must reach
TOLERANCES = [TOL * 10 ** (k / 4) for k in range(16, -17, -1)]  # 1 ... 1e-8, searched per solver
RATES = (0.3, 0.99)  # the per-sample contraction rates of the early-exit group, spread over the batch
FLOOR = "hand-written Picard"
PER_SAMPLE_FLOOR = "hand-written Picard, drops converged rows"
PEERS = ("torchdeq anderson", "torchdeq fixed_point_iter")  # the ratio columns of the forward rows


class Counted:
    """Wrap a cell ``cell(z, data)`` and count sample-evaluations."""

    def __init__(self, cell: Callable):
        """Count the calls of ``cell`` from zero."""
        self.cell, self.evals = cell, 0

    def __call__(self, z: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
        """``cell(z, data)``, counting the rows of ``z`` (the samples evaluated)."""
        self.evals += z.shape[0]
        return self.cell(z, data)


def tanh_problem(d: int, rho: float, batch: int = 64, seed: int = 0, device: str = "cpu"):
    """``z -> tanh(W z + x)`` with ``||W||_2 = rho``; returns (W, x)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d, d, generator=g)
    W = rho * W / torch.linalg.matrix_norm(W, 2)
    return W.to(device), torch.randn(batch, d, generator=g).to(device)


def rates_problem(d: int, batch: int = 64, seed: int = 0, device: str = "cpu"):
    """``z_i -> tanh(r_i W z_i + x_i)`` with per-sample rates ``r``; returns (cell, data).

    ``W`` is symmetric with ``||W||_2 = 1``, so its spectral radius is 1 too and ``r_i`` is (close to) the
    sample's actual contraction rate; the small input ``x`` (scale 0.1) keeps tanh near its linear range.
    ``data = [x | r]`` has one row per sample, the rate in its last column: ``cell(z, data)`` reads each
    sample's rate from its own row, so any subset of rows is a valid batch.
    """
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d, d, generator=g)
    W = W + W.T
    W = (W / torch.linalg.matrix_norm(W, 2)).to(device)
    x = 0.1 * torch.randn(batch, d, generator=g)
    r = torch.tensor(np.linspace(*RATES, batch), dtype=torch.float32)[:, None]
    data = torch.cat([x, r], dim=1).to(device)
    return (lambda z, data: torch.tanh(data[:, -1:] * (z @ W.T) + data[:, :-1])), data


class CellModule(nn.Module):
    """An ``nn.Module`` around a callable ``cell(z, x)`` (``DEQ`` takes modules)."""

    def __init__(self, cell: Callable):
        """Hold ``cell`` (a plain callable, not a submodule)."""
        super().__init__()
        self.fn = cell

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``cell(z, x)``."""
        return self.fn(z, x)


def conv_problem(
    batch: int = 16, channels: int = 16, size: int = 32, rho: float = 0.9, seed: int = 0, device: str = "cpu"
):
    """A conv DEQ cell ``(z, u) -> tanh(conv(z) + u)`` whose conv has operator norm ``rho``, with the
    injection ``u = GroupNorm(conv_in(x))``; returns (cell, z0, u)."""
    g = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    conv_in = torch.nn.Conv2d(3, channels, 3, padding=1)
    norm = torch.nn.GroupNorm(4, channels)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        v = torch.randn(1, channels, size, size, generator=g)
        for _ in range(50):  # power iteration on conv^T conv for its operator norm
            v = torch.nn.functional.conv_transpose2d(conv(v), conv.weight, padding=1)
            v = v / v.norm()
        conv.weight.mul_(rho / conv(v).norm())
    x = torch.randn(batch, 3, size, size, generator=g).to(device)
    conv, conv_in, norm = conv.to(device), conv_in.to(device), norm.to(device)
    injection = norm(conv_in(x)).detach()
    z0 = torch.zeros(batch, channels, size, size, device=device)
    return (lambda z, u: torch.tanh(conv(z) + u)), z0, injection


def residual(f: Callable, z: torch.Tensor) -> float:
    """``max_batch ||f(z) - z|| / ||f(z)||``."""
    with torch.no_grad():
        fz = f(z)
        num = (fz - z).flatten(1).norm(dim=1)
        return float((num / fz.flatten(1).norm(dim=1)).max())


def picard_floor(f: Callable, z0: torch.Tensor, tol: float, max_iter: int = 500) -> torch.Tensor:
    """The hand-written loop: iterate the whole batch until its worst relative residual is below ``tol``."""
    z = z0
    for _ in range(max_iter):
        fz = f(z)
        if float(((fz - z).flatten(1).norm(dim=1) / fz.flatten(1).norm(dim=1)).max()) <= tol:
            return fz
        z = fz
    return z


def picard_per_sample(cell: Callable, z0: torch.Tensor, data: torch.Tensor, tol: float, max_iter: int = 500):
    """The hand-written early-exit loop: iterate only the rows whose relative residual is above ``tol``."""
    z, rows = z0.clone(), torch.arange(z0.shape[0], device=z0.device)
    for _ in range(max_iter):
        zr = z[rows]
        fz = cell(zr, data[rows])
        z[rows] = fz
        rows = rows[(fz - zr).flatten(1).norm(dim=1) > tol * fz.flatten(1).norm(dim=1)]
        if rows.numel() == 0:
            break
    return z


def forward_solvers(z0: torch.Tensor, data: torch.Tensor) -> dict[str, Callable]:
    """Each forward solver as ``solve(cell, tol) -> z`` for ``z = cell(z, data)`` from ``z0``.

    deq-core receives the per-sample ``data`` through ``args`` (so it can drop converged samples);
    the peers receive the closure ``f(z) = cell(z, data)``.
    """
    from torchdeq.solver import anderson_solver, fixed_point_iter

    def peer(solver):
        """A torchdeq solver on the closure, stopping on the batch's relative residual."""
        return lambda cell, tol: solver(lambda z: cell(z, data), z0, max_iter=500, tol=tol, stop_mode="rel")[
            0
        ]

    def ours(kind):
        """deq-core's ``fixed_point`` with the per-sample ``data`` as ``args``."""
        return lambda cell, tol: fixed_point(cell, z0, data, solver=kind, tol=tol, max_iter=500).value

    return {
        FLOOR: lambda cell, tol: picard_floor(lambda z: cell(z, data), z0, tol),
        "deq-core picard": ours("picard"),
        "deq-core anderson": ours("anderson"),
        "torchdeq fixed_point_iter": peer(fixed_point_iter),
        "torchdeq anderson": peer(anderson_solver),
    }


def per_sample_solvers(z0: torch.Tensor, data: torch.Tensor) -> dict[str, Callable]:
    """The early-exit group's solvers, as in :func:`forward_solvers`.

    ``DEQ(cell)(data, z0)`` gets the per-sample ``data`` as its input ``x`` and evaluates the cell only on
    the rows of samples not yet converged; ``fixed_point`` with the same ``data`` as ``args`` freezes
    converged samples but still evaluates the whole batch; torchdeq's solvers stop on one residual of the
    whole batch.
    """
    solvers = forward_solvers(z0, data)

    def deq(kind):
        """deq-core's ``DEQ`` module around the cell, called on the per-sample ``data``."""

        def solve(cell, tol):
            """``z*`` at ``tol``."""
            return DEQ(CellModule(cell), solver=kind, tol=tol, max_iter=500)(data, z0)[0]

        return solve

    return {
        PER_SAMPLE_FLOOR: lambda cell, tol: picard_per_sample(cell, z0, data, tol),
        FLOOR: solvers[FLOOR],
        "deq-core picard, DEQ (skips converged)": deq("picard"),
        "deq-core anderson, DEQ (skips converged)": deq("anderson"),
        "deq-core picard, fixed_point (whole batch)": solvers["deq-core picard"],
        "deq-core anderson, fixed_point (whole batch)": solvers["deq-core anderson"],
        "torchdeq fixed_point_iter": solvers["torchdeq fixed_point_iter"],
        "torchdeq anderson": solvers["torchdeq anderson"],
    }


def forward_rows(
    name: str,
    cell: Callable,
    z0: torch.Tensor,
    data: torch.Tensor,
    repeats: int,
    solvers: dict[str, Callable] | None = None,
    floor: str = FLOOR,
) -> list[dict]:
    """Time every forward solver on ``cell(z, data)``, each at the loosest tolerance that reaches ``TOL``.

    Every solver's own tolerance is calibrated so that its returned ``z`` has an achieved residual
    ``max_batch ||f(z) - z|| / ||f(z)|| <= TOL``: the rows compare equal accuracy, not equal settings.
    ``solvers`` defaults to :func:`forward_solvers`; ``floor`` names the row of the "vs floor" column.
    """
    f = lambda z: cell(z, data)
    solvers = forward_solvers(z0, data) if solvers is None else solvers
    rows = []
    with torch.no_grad():
        tols = {
            label: loosest_tolerance(lambda t, s=solve: residual(f, s(cell, t)), TOL, TOLERANCES)
            for label, solve in solvers.items()
        }
        calls = {label: (lambda s=solve, t=tols[label]: s(cell, t)) for label, solve in solvers.items()}
        medians = interleaved_medians(calls, repeats=repeats, sync=synchronizer(z0.device))
        for label, solve in solvers.items():
            counter = Counted(cell)
            z = solve(counter, tols[label])
            rows.append(
                {
                    "problem": name,
                    "case": f"solve: {label}",
                    "ms": 1e3 * medians[label],
                    "f evals/sample": counter.evals / z0.shape[0],
                    "residual": residual(f, z),
                    "tol set": tols[label],
                }
            )
    _ratios(rows, floor, PEERS)
    return rows


def _ratios(rows: list[dict], floor: str, peers: tuple[str, ...]) -> None:
    """Add each row's time relative to the ``floor`` row ("vs floor") and to each of the ``peers`` rows."""
    by_case = {r["case"].split(": ", 1)[1]: r for r in rows}
    for row in rows:
        row["vs floor"] = row["ms"] / by_case[floor]["ms"]
        for peer in peers:
            row[f"vs {peer}"] = row["ms"] / by_case[peer]["ms"]


def synchronizer(device: torch.device) -> Callable[[], None]:
    """What waits for queued kernels on ``device`` (timing on CUDA needs it)."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def training_rows(d: int, rho: float, repeats: int, device: str) -> list[dict]:
    """Time one forward+backward step with each exact gradient, and measure each gradient's error."""
    from torchdeq import get_deq

    W0, x = tanh_problem(d, rho, device=device)
    W = W0.clone().requires_grad_()

    def reference() -> torch.Tensor:
        """The gradient by long unrolled autograd in float64."""
        W64 = W0.double().requires_grad_()
        z = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
        for _ in range(
            3000 if rho > 0.95 else 600
        ):  # long unrolled autograd, converged far below float32 eps
            z = torch.tanh(z @ W64.T + x.double())
        (g,) = torch.autograd.grad((z**2).sum(), W64)
        return g.float()

    ref = reference()
    cell = lambda z: torch.tanh(z @ W.T + x)

    def ours(solver):
        """deq-core's step: a solve with the implicit gradient, forward and adjoint by ``solver`` to 1e-6."""

        def step():
            """One forward + backward."""
            z = fixed_point(
                lambda z, x: torch.tanh(z @ W.T + x),
                torch.zeros_like(x),
                x,
                solver=solver,
                tol=1e-6,
                max_iter=500,
                backward=Implicit(solver=solver, tol=1e-6),
            ).value
            return torch.autograd.grad((z**2).sum(), W)[0]

        return step

    def torchdeq_ift(solver):
        """torchdeq's exact-gradient layer, forward and backward by ``solver`` to 1e-6."""
        return get_deq(
            f_solver=solver,
            f_max_iter=500,
            f_tol=1e-6,
            f_stop_mode="rel",
            ift=True,
            b_solver=solver,
            b_max_iter=500,
            b_tol=1e-6,
            b_stop_mode="rel",
        )

    deq_default = get_deq(f_solver="anderson", f_max_iter=500, f_tol=1e-6, f_stop_mode="rel")

    def torchdeq_step(deq):
        """A step through the torchdeq layer ``deq``."""

        def step():
            """One forward + backward."""
            z = deq(cell, torch.zeros_like(x))[0][-1]
            return torch.autograd.grad((z**2).sum(), W)[0]

        return step

    steps = {
        "deq-core implicit (picard)": ours("picard"),
        "torchdeq ift=True": torchdeq_step(torchdeq_ift("anderson")),
        "deq-core implicit (anderson)": ours("anderson"),
        "torchdeq ift=True (fixed_point_iter)": torchdeq_step(torchdeq_ift("fixed_point_iter")),
        "torchdeq default (1-step)": torchdeq_step(deq_default),
    }
    medians = interleaved_medians(steps, repeats=repeats, sync=synchronizer(x.device))
    rows = []
    for label, step in steps.items():
        g = step()
        rows.append(
            {
                "problem": f"tanh d={d} rho={rho}",
                "case": f"train step: {label}",
                "ms": 1e3 * medians[label],
                "grad error": float((g - ref).norm() / ref.norm()),
            }
        )
    base = rows[1]["ms"]
    for row in rows:
        row["vs torchdeq ift=True"] = row["ms"] / base
    return rows


COLUMNS = [
    "problem",
    "case",
    "ms",
    "vs floor",
    "vs torchdeq anderson",
    "vs torchdeq fixed_point_iter",
    "vs torchdeq ift=True",
    "f evals/sample",
    "residual",
    "tol set",
    "grad error",
]


def main() -> None:
    """Run every row and write the JSON + Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="d=256 only (a smoke run)")
    parser.add_argument("--out", default="results/peers_torch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dims = [256] if args.quick else [256, 2048]
    rows = []
    for d in dims:
        for rho in (0.9, 0.98):
            W, x = tanh_problem(d, rho, device=args.device)
            rows += forward_rows(
                f"tanh d={d} rho={rho}",
                lambda z, x, W=W: torch.tanh(z @ W.T + x),
                torch.zeros_like(x),
                x,
                args.repeats,
            )
    cell, z0, u = conv_problem(device=args.device)
    rows += forward_rows("conv 16ch 32x32 batch 16", cell, z0, u, args.repeats)
    d = dims[-1]
    cell, data = rates_problem(d, device=args.device)
    z0 = torch.zeros(data.shape[0], d, device=args.device)
    rows += forward_rows(
        f"tanh rates {RATES[0]}-{RATES[1]} d={d}",
        cell,
        z0,
        data,
        args.repeats,
        solvers=per_sample_solvers(z0, data),
        floor=PER_SAMPLE_FLOOR,
    )
    for d in dims:
        rows += training_rows(d, 0.9, args.repeats, args.device)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "threads": args.threads,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "torchdeq": importlib.metadata.version("torchdeq"),
        "tol": TOL,
        "per-sample rates": list(RATES),
        "floor": f"{FLOOR} (per-sample group: {PER_SAMPLE_FLOOR})",
    }
    print(write_results(rows, COLUMNS, args.out, meta))


if __name__ == "__main__":
    main()
