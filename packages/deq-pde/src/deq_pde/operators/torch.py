"""Torch assembly and solves: :class:`~deq_pde.operators.batched.BatchedAssembler` on tensors, any device.

Assembly is the shared code; what torch adds is the tensor check, the adjoint-gradient CG solve (an
``autograd.Function``) and the conversion to a torch sparse CSR tensor.
"""

from __future__ import annotations

import torch

from deq_pde.operators.batched import BatchedAssembler


class TorchAssembler(BatchedAssembler):
    """Batched torch assembly of stiffness, mass and load on ``space``'s sparsity pattern."""

    def array(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """``x`` itself when it is a floating-point tensor, else a ValueError naming it."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        return x

    def solve(self, values: torch.Tensor, rhs: torch.Tensor, tol: float = 1e-10, maxiter: int | None = None):
        """Solve SPD systems ``A x = rhs`` by Jacobi-preconditioned CG; differentiable in values and rhs."""
        v, b, batch = self.batch(values, rhs)
        maxiter = 10 * self.space.num_dofs if maxiter is None else maxiter
        return _SPDSolve.apply(self, v, b, tol, maxiter).reshape(*batch, -1)

    def to_sparse_csr(self, values: torch.Tensor) -> torch.Tensor:
        """One matrix (nnz,) as a torch sparse CSR tensor on the values' device."""
        if values.ndim != 1:
            raise ValueError(f"to_sparse_csr takes one matrix's values (nnz,), got {tuple(values.shape)}")
        p = self.space.pattern
        crow = torch.as_tensor(p.indptr, device=values.device)
        col = self.constant("cols", values)
        return torch.sparse_csr_tensor(crow, col, values, (p.num_rows, p.num_rows), check_invariants=False)


class _SPDSolve(torch.autograd.Function):
    """``x = A(values)^{-1} b`` for symmetric A, with the adjoint solve in the backward pass."""

    @staticmethod
    def forward(ctx, assembler: TorchAssembler, values, rhs, tol, maxiter):
        with torch.no_grad():
            x = assembler.pcg(values, rhs, tol, maxiter)
        ctx.save_for_backward(values, x)
        ctx.assembler, ctx.tol, ctx.maxiter = assembler, tol, maxiter
        return x

    @staticmethod
    def backward(ctx, grad_x):
        values, x = ctx.saved_tensors
        asm = ctx.assembler
        with torch.no_grad():
            lam = asm.pcg(values, grad_x.contiguous(), ctx.tol, ctx.maxiter)
            grad_values = -lam[:, asm.constant("rows", x)] * x[:, asm.constant("cols", x)]
        return None, grad_values, lam, None, None
