"""Train a small DEQ in PyTorch, then spend more test-time iterations on the same model.

    python examples/quickstart_torch.py [--steps 300]

The task: recover x from y = A x for a fixed random 32x64 matrix A (an underdetermined inverse problem,
so the best possible test MSE is about 0.5: half of x is invisible to A).
The implicit model iterates z <- tanh(W z + U y) to its fixed point, and its readout predicts x.
It prints the test error at growing iteration budgets: more compute, better answers, then a plateau.
"""

import argparse

import torch

from deq_core.torch import DEQ


class Cell(torch.nn.Module):
    """``z -> tanh(W z + U y + b)`` with ``W`` kept contractive by a spectral-norm parametrisation."""

    def __init__(self, n_in: int, width: int):
        super().__init__()
        self.W = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Linear(width, width, bias=False))
        self.U = torch.nn.Linear(n_in, width)

    def forward(self, z, y):
        return torch.tanh(0.9 * self.W(z) + self.U(y))


def main() -> None:
    """Train, then sweep the test-time budget."""
    parser = argparse.ArgumentParser(description="Train a small DEQ and sweep its test-time budget.")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    A = torch.randn(32, 64) / 8

    def batch(n):
        x = torch.randn(n, 64)
        return x @ A.T, x  # measurements y = A x (noise-free); the target is x

    width = 128
    deq = DEQ(Cell(32, width), solver="anderson", backward="implicit", tol=1e-4, max_iter=30)
    readout = torch.nn.Linear(width, 64)
    params = [*deq.parameters(), *readout.parameters()]
    optimizer = torch.optim.Adam(params, lr=2e-3)
    for step in range(args.steps):
        y, x = batch(64)
        z, stats = deq(y, torch.zeros(64, width))
        loss = ((readout(z) - x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}  mean iterations {stats.nstep.float().mean():.1f}")
    y, x = batch(512)
    print("\ntest-time budget -> test MSE")
    with torch.no_grad():
        for budget in (1, 2, 4, 8, 16, 32, 64):
            z, stats = deq(y, torch.zeros(512, width), max_iter=budget)
            print(f"  {budget:3d} iterations: {((readout(z) - x) ** 2).mean().item():.4f}")


if __name__ == "__main__":
    main()
