"""Restarted PDHG (PDLP-style) in torch: sparse CSR matvecs with a precomputed transpose, any device.

The arithmetic is :mod:`deq_opt.baselines.pdhg.iteration`'s, run eagerly; this module moves the problem to
the device and multiplies by the sparse matrix.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP
from deq_opt.baselines.pdhg.solve import EagerBackend, solve_pdhg
from deq_opt.baselines.result import LPResult
from deq_opt.operators.lp import LinearProgram

__all__ = ["solve_pdhg_torch"]


def _csr(M: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.as_tensor(M.indptr, dtype=torch.int64),
            torch.as_tensor(M.indices, dtype=torch.int64),
            torch.as_tensor(M.data),
            size=M.shape,
            dtype=dtype,
            device=device,
            check_invariants=False,
        )


class _Torch(EagerBackend):
    """The torch :class:`~deq_opt.baselines.pdhg.solve.Backend` on one device and dtype."""

    name = "torch"

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device, self.dtype = device, dtype

    def problem(self, p: ScaledLP, floats: dict[str, np.ndarray], flags: dict[str, np.ndarray]) -> dict:
        P = {key: self.asarray(v) for key, v in floats.items()}
        P |= {key: torch.as_tensor(v, device=self.device) for key, v in flags.items()}
        return P | {"A": _csr(p.A, self.device, self.dtype), "AT": _csr(p.AT, self.device, self.dtype)}

    def asarray(self, v: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(v, device=self.device).to(self.dtype)

    def to_numpy(self, a: torch.Tensor) -> np.ndarray:
        return a.to("cpu", torch.float64).numpy()


def solve_pdhg_torch(
    lp: LinearProgram,
    options: PDHGOptions | None = None,
    *,
    x0: np.ndarray | None = None,
    y0: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> LPResult:
    """Solve ``lp`` with restarted PDHG in torch on ``device`` (float64 by default); optional warm start."""
    return solve_pdhg(lp, options, _Torch(torch.device(device), dtype), x0, y0)
