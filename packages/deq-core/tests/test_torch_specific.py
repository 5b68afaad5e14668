"""PyTorch-only behaviour: compile, activation offloading, autocast, and backward memory."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deq_core.testing import problems  # noqa: E402
from deq_core.torch import DEQ, fixed_point  # noqa: E402
from deq_core.torch.memory import saved_bytes  # noqa: E402


class TanhCell(torch.nn.Module):
    """``z -> tanh(W z + x)`` with a contractive ``W``."""

    def __init__(self, d: int = 16, rate: float = 0.9, dtype=torch.float32):
        super().__init__()
        W = problems.tanh(d=d, rate=rate).params["W"]
        self.W = torch.nn.Parameter(torch.as_tensor(W, dtype=dtype))

    def forward(self, z, x):
        return torch.tanh(z @ self.W.T + x)


def test_compiled_deq_forward_matches_eager():
    """A ``torch.compile``d DEQ gives the eager answer (graph breaks at the solver's loop are allowed)."""
    torch.manual_seed(0)
    deq = DEQ(TanhCell(), tol=1e-6, max_iter=100)
    x = torch.randn(4, 16)
    eager, _ = deq(x)
    compiled, stats = torch.compile(deq, backend="eager")(x)
    torch.testing.assert_close(compiled, eager)
    assert bool(stats.converged.all())


@pytest.mark.parametrize("backward", ["implicit", "jfb", "phantom", "unroll"])
def test_backward_under_save_on_cpu(backward):
    """Solve and backward work under activation offloading and give the same gradient."""
    torch.manual_seed(0)
    cell = TanhCell(dtype=torch.float64)
    x = torch.randn(3, 16, dtype=torch.float64, requires_grad=True)

    def grads():
        z, _ = DEQ(cell, backward=backward, tol=1e-10, max_iter=200)(x)
        return torch.autograd.grad((z**2).sum(), [cell.W, x])

    plain = grads()
    with torch.autograd.graph.save_on_cpu():
        offloaded = grads()
    for a, b in zip(plain, offloaded, strict=True):
        torch.testing.assert_close(a, b)


def test_implicit_memory_is_constant_in_iterations():
    """Implicit backward saves the same bytes at 10 and 200 iterations; unroll grows with them."""
    torch.manual_seed(0)
    cell = TanhCell(d=64, rate=0.999)
    x = torch.randn(8, 64)

    def run(backward, iters):
        return saved_bytes(
            lambda: fixed_point(
                cell, torch.zeros(8, 64), x, solver="picard", backward=backward, tol=0.0, max_iter=iters
            )
        )

    assert run("implicit", 10) == run("implicit", 200)
    assert run("unroll", 200) > 10 * run("unroll", 10) / 2


def test_autocast_solver_arithmetic_in_float32():
    """Under ``torch.autocast`` the cell runs in bfloat16 while residuals and Anderson stay float32."""
    torch.manual_seed(0)
    cell = TanhCell(rate=0.8)
    x = torch.randn(4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sol = fixed_point(cell, torch.zeros(4, 16), x, tol=1e-2, max_iter=60)
    assert sol.stats.rel_residual.dtype == torch.float32
    assert bool(sol.stats.converged.all())
    ref = fixed_point(cell, torch.zeros(4, 16), x, tol=1e-7, max_iter=200).value
    assert float((sol.value.detach().float() - ref.detach()).abs().max()) < 5e-2


class RateCell(torch.nn.Module):
    """``z_i -> r_i A z_i + x_i``, the rate ``r_i`` in the input's last column; counts evaluations."""

    def __init__(self, A: torch.Tensor):
        super().__init__()
        self.A, self.evaluated = A, []

    def forward(self, z, a):
        self.evaluated.append(z.shape[0])
        return a[:, -1:] * (z @ self.A.T) + a[:, :-1]


def test_deq_skips_converged_samples():
    """In a DEQ a converged sample keeps its iterate and the cell is no longer evaluated on it."""
    problem = problems.per_sample_rates()
    cell = RateCell(torch.as_tensor(problem.params["A"]))
    x = torch.as_tensor(problem.args)
    z0 = torch.zeros(len(x), cell.A.shape[0], dtype=x.dtype)
    with torch.no_grad():  # no gradient surrogate: count the solver's evaluations only
        z, stats = DEQ(cell, solver="picard", tol=1e-8, max_iter=1000)(x, z0)
    nstep = stats.nstep.tolist()
    assert sum(cell.evaluated) == sum(nstep)  # each sample costs exactly its own iterations
    alone, _ = DEQ(cell, solver="picard", tol=1e-8, max_iter=nstep[0])(x[:1], z0[:1])
    np.testing.assert_allclose(z[0].detach().numpy(), alone[0].detach().numpy(), rtol=1e-13)


def test_fixed_point_never_slices_shared_tensors():
    """A shared weight whose first dimension equals the batch size is passed whole (no per-sample guess)."""
    torch.manual_seed(0)
    W = torch.randn(4, 4, dtype=torch.float64)
    W = 0.5 * W / torch.linalg.matrix_norm(W, 2)
    rates = torch.tensor([[0.1], [0.5], [0.9], [0.99]], dtype=torch.float64)
    f = lambda z, w: rates * torch.tanh(z @ w.T) + 1.0
    sol = fixed_point(f, torch.zeros(4, 4, dtype=torch.float64), W, solver="picard", tol=1e-10, max_iter=3000)
    assert int(sol.result) == 0
    torch.testing.assert_close(f(sol.value, W), sol.value, rtol=1e-8, atol=1e-9)


def test_closure_over_per_sample_data_is_a_clear_error():
    """Per-sample data hidden in a DEQ cell cannot be indexed with the active samples: say so."""
    problem = problems.per_sample_rates()
    A = torch.as_tensor(problem.params["A"])
    args = torch.as_tensor(problem.args)
    rates = args[:, -1:]

    class Hidden(torch.nn.Module):
        def forward(self, z, x):
            return rates * (z @ A.T) + x

    with pytest.raises(RuntimeError, match="per-sample data must come through x"):
        DEQ(Hidden(), solver="picard")(args[:, :-1], torch.zeros(len(args), A.shape[0], dtype=A.dtype))
