"""The PyTorch trainer: learning, evaluation cadence, exact resume, regularisers and 2-process DDP.

Run as a script (``torchrun --nproc_per_node=2 test_training_torch.py OUT``) it is the DDP worker that
:func:`test_ddp_matches_single_process` launches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from safetensors.torch import load_file  # noqa: E402
from torch import nn  # noqa: E402

from deq_core.errors import ConfigError  # noqa: E402
from deq_core.torch import DEQ  # noqa: E402
from deq_core.torch.regularizers import jacobian_frobenius, spectral_normalize  # noqa: E402
from deq_core.torch.train import fit, init_distributed, shard_batch  # noqa: E402
from deq_core.training import CheckpointDir, TrainConfig, WarmStartCache  # noqa: E402

DIM, HIDDEN, BATCH = 3, 6, 8


class Cell(nn.Module):
    """``z -> tanh(W z + u)``: a contraction for the small initial ``W``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(HIDDEN, HIDDEN, bias=False)
        nn.init.normal_(self.linear.weight, std=0.3 / HIDDEN**0.5)

    def forward(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(z) + u)


class Net(nn.Module):
    """Encoder, DEQ (Anderson forward, implicit backward), linear read-out."""

    def __init__(self, **solve) -> None:
        super().__init__()
        self.encode = nn.Linear(DIM, HIDDEN)
        self.deq = DEQ(Cell(), **{"solver": "anderson", "tol": 1e-10, "max_iter": 60, **solve})
        self.decode = nn.Linear(HIDDEN, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.deq(self.encode(x))
        return self.decode(z)


def make(seed: int = 0, lr: float = 0.05, **solve) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A float64 model and an Adam optimizer."""
    torch.manual_seed(seed)
    model = Net(**solve).double()
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def sample(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh regression batch ``y = sin(x1 + x2 - x3)`` from the trainer's generator."""
    x = torch.randn(BATCH, DIM, generator=generator, dtype=torch.float64)
    return x, torch.sin(x @ torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))[:, None]


def mse(model: nn.Module, batch: tuple) -> torch.Tensor:
    """Mean squared error of ``model`` on a batch."""
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def weights(model: nn.Module) -> dict[str, np.ndarray]:
    """The state dict as numpy arrays."""
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def held_out() -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed evaluation batch."""
    return sample(0, torch.Generator().manual_seed(12345))


def test_fit_learns_and_evaluates_on_schedule():
    model, optimizer = make()
    evaluated = []

    def evaluate(m: nn.Module, step: int) -> dict[str, float]:
        assert not m.training
        evaluated.append(step)
        with torch.no_grad():
            return {"mse": float(mse(m, held_out()))}

    before = evaluate(model.eval(), 0)["mse"]
    model.train()
    config = TrainConfig(steps=60, eval_every=25, log_every=20, progress=True, threads=1)
    history = fit(model, optimizer, mse, sample, config, evaluate=evaluate)
    assert torch.get_num_threads() == 1
    assert evaluated == [0, 25, 50, 60]
    assert [s for s, _ in history.losses] == [20, 40, 60]
    assert history.evaluations[-1][1]["mse"] < 0.5 * before
    assert model.training


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    steps, crash_at = 12, 8
    options = {"checkpoint_every": 3, "jacobian_weight": 0.1, "progress": False}

    def scheduler(opt):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)

    model, optimizer = make()
    fit(
        model,
        optimizer,
        mse,
        sample,
        TrainConfig(steps=steps, **options, checkpoint_dir=str(tmp_path / "a")),
        scheduler=scheduler(optimizer),
    )
    reference = weights(model)

    def crashing(step: int, generator: torch.Generator):
        if step == crash_at:
            raise KeyboardInterrupt("simulated crash")
        return sample(step, generator)

    model, optimizer = make()
    config = TrainConfig(steps=steps, **options, checkpoint_dir=str(tmp_path / "b"))
    with pytest.raises(KeyboardInterrupt):
        fit(model, optimizer, mse, crashing, config, scheduler=scheduler(optimizer))
    assert CheckpointDir(tmp_path / "b").steps() == [3, 6]

    torch.manual_seed(999)  # a new process would start with other weights and RNG states
    np.random.seed(7)
    model, optimizer = make(seed=1)
    history = fit(model, optimizer, mse, sample, config, scheduler=scheduler(optimizer))
    assert history.start == 6
    resumed = weights(model)
    assert resumed.keys() == reference.keys()
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)


def test_resume_with_batch_iterable_skips_used_batches(tmp_path):
    data = [sample(i, torch.Generator().manual_seed(i)) for i in range(10)]
    config = TrainConfig(steps=10, checkpoint_every=5, progress=False, checkpoint_dir=str(tmp_path / "a"))
    model, optimizer = make()
    fit(model, optimizer, mse, data, config)
    reference = weights(model)
    half = TrainConfig(steps=5, checkpoint_every=5, progress=False, checkpoint_dir=str(tmp_path / "b"))
    model, optimizer = make()
    fit(model, optimizer, mse, data, half)
    model, optimizer = make(seed=3)
    fit(
        model, optimizer, mse, data, TrainConfig(**{**config.__dict__, "checkpoint_dir": str(tmp_path / "b")})
    )
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, reference[name], err_msg=name)
    with pytest.raises(ValueError, match="ran out at step 10"):
        fit(*make(), mse, data, TrainConfig(steps=11, progress=False))


def test_checkpoint_files_and_weights_only_state(tmp_path):
    model, optimizer = make()
    fit(
        model,
        optimizer,
        mse,
        sample,
        TrainConfig(
            steps=4, checkpoint_every=2, keep_checkpoints=1, checkpoint_dir=str(tmp_path), progress=False
        ),
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["step-000000004.json", "step-000000004.model.safetensors", "step-000000004.state.pt"]
    stored = load_file(tmp_path / "step-000000004.model.safetensors")
    for name, value in weights(model).items():
        np.testing.assert_array_equal(stored[name].numpy(), value)
    state = torch.load(tmp_path / "step-000000004.state.pt", weights_only=True)
    assert state["step"] == 4 and "generator" in state["rng"]
    manifest = json.loads((tmp_path / "step-000000004.json").read_text())
    assert manifest["metadata"]["backend"] == "torch"


def test_jacobian_frobenius_matches_exact_norm():
    torch.manual_seed(0)
    W = torch.randn(5, 5, dtype=torch.float64)
    u = torch.randn(4, 5, dtype=torch.float64)
    z = torch.randn(4, 5, dtype=torch.float64)
    W.requires_grad_()

    def f(z, u):
        return torch.tanh(z @ W.T + u)

    estimate = jacobian_frobenius(f, z, u, probes=4000)
    s = 1 - torch.tanh(z @ W.T + u) ** 2  # J_i = diag(s_i) W
    exact = float(((s[:, :, None] * W[None]) ** 2).sum().detach()) / z.numel()
    assert abs(float(estimate.detach()) - exact) < 0.05 * exact
    (grad,) = torch.autograd.grad(estimate, W)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_jacobian_penalty_shrinks_the_jacobian():
    def jacobian_at_end(weight: float) -> float:
        model, optimizer = make(lr=0.02)
        fit(model, optimizer, mse, sample, TrainConfig(steps=25, jacobian_weight=weight, progress=False))
        x = held_out()[0]
        with torch.no_grad():
            u = model.encode(x)
            z, _ = model.deq(u)
        torch.manual_seed(0)
        return float(jacobian_frobenius(model.deq.cell, z, u, probes=64))

    assert jacobian_at_end(5.0) < 0.7 * jacobian_at_end(0.0)


def test_spectral_normalize_bounds_the_cell():
    torch.manual_seed(0)
    model = Net().double()
    with torch.no_grad():
        model.deq.cell.linear.weight.mul_(20.0)
    spectral_normalize(model.deq.cell)
    model.train()
    for _ in range(30):  # each training-mode access runs one power-iteration step
        weight = model.deq.cell.linear.weight
    assert abs(float(torch.linalg.matrix_norm(weight.detach(), ord=2)) - 1.0) < 1e-6
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    original = model.deq.cell.linear.parametrizations.weight.original
    before = original.detach().clone()
    history = fit(model, optimizer, mse, sample, TrainConfig(steps=5, progress=False))
    assert np.isfinite(history.losses[-1][1])
    assert original.grad is not None and not torch.equal(original.detach(), before)
    with pytest.raises(ValueError, match="no Linear"):
        spectral_normalize(nn.Tanh())


def test_bad_input_errors():
    model, optimizer = make()
    with pytest.raises(ValueError, match="scalar tensor"):
        fit(
            model, optimizer, lambda m, b: (m(b[0]) - b[1]) ** 2, sample, TrainConfig(steps=1, progress=False)
        )
    with pytest.raises(ValueError, match="contains no deq_core DEQ"):
        fit(
            nn.Linear(3, 1), optimizer, mse, sample, TrainConfig(steps=1, jacobian_weight=1.0, progress=False)
        )
    with pytest.raises(ValueError, match=r"shape \(5, 3\) cannot be split evenly over 2 ranks"):
        shard_batch((torch.zeros(5, 3),), 0, 2)
    with pytest.raises(ConfigError, match="checkpoint_dir is None"):
        TrainConfig(steps=3, checkpoint_every=1)
    with pytest.raises(ConfigError, match="TrainConfig.steps"):
        TrainConfig(steps=0)
    with pytest.raises(TypeError, match="sampler"):
        fit(model, optimizer, mse, 3, TrainConfig(steps=1, progress=False))


def test_shard_batch_splits_nested_batches():
    batch = {"x": torch.arange(8.0).reshape(4, 2), "pair": (torch.arange(4), 7)}
    shard = shard_batch(batch, 1, 2)
    assert shard["x"].tolist() == [[4.0, 5.0], [6.0, 7.0]] and shard["pair"][0].tolist() == [2, 3]
    assert shard["pair"][1] == 7


DDP_STEPS = 6


def ddp_worker(out: str) -> None:
    """One rank of the 2-process run: the same model and global batches as the single-process test."""
    rank, world = init_distributed()
    assert world == 2
    model, optimizer = make()
    config = TrainConfig(
        steps=DDP_STEPS, checkpoint_every=DDP_STEPS, checkpoint_dir=out, log_every=1, progress=False
    )
    history = fit(model, optimizer, mse, sample, config)
    model = spectral_normalize(make()[0])  # DDP with both regularisers runs too
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    regularized = fit(
        model, optimizer, mse, sample, TrainConfig(steps=2, jacobian_weight=0.5, progress=False)
    )
    if rank == 0:
        Path(out, "losses.json").write_text(
            json.dumps({"plain": history.losses, "regularized": regularized.losses})
        )
    # Both ranks arrive here before either tears gloo down, and leave without running interpreter teardown:
    # gloo's threads can otherwise abort a rank at exit ("terminate called without an active exception")
    # after all its work is done and written.
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def test_ddp_matches_single_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__]
    run = subprocess.run([*command, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    model, optimizer = make()
    history = fit(model, optimizer, mse, sample, TrainConfig(steps=DDP_STEPS, log_every=1, progress=False))
    distributed = load_file(tmp_path / f"step-{DDP_STEPS:09d}.model.safetensors")
    for name, value in weights(model).items():
        np.testing.assert_allclose(distributed[name].numpy(), value, rtol=1e-9, atol=1e-11, err_msg=name)
    losses = json.loads((tmp_path / "losses.json").read_text())
    np.testing.assert_allclose([v for _, v in losses["plain"]], [v for _, v in history.losses], rtol=1e-9)
    assert len(losses["regularized"]) == 1 and np.isfinite(losses["regularized"][0][1])
    assert model.deq.cell.linear.weight.abs().sum() > 0


if __name__ == "__main__":
    ddp_worker(sys.argv[1])


# Warm starts: a training set of SAMPLES fixed inputs, each visited again and again.
SAMPLES = 12
WARM_X = torch.randn(SAMPLES, DIM, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def warm_sample(step: int, generator: torch.Generator) -> tuple[np.ndarray, tuple]:
    """``(indices, (x, y))``: BATCH distinct samples of the fixed set, drawn with the trainer's generator."""
    index = torch.randperm(SAMPLES, generator=generator)[:BATCH].numpy()
    x = WARM_X[index]
    return index, (x, torch.sin(x @ torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))[:, None])


def warm_loss(model: nn.Module, data: tuple, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Three solver iterations from the cached iterate, then the read-out's squared error."""
    x, y = data
    z, _ = model.deq(model.encode(x), z0, max_iter=3)
    return ((model.decode(z) - y) ** 2).mean(), z


def make_warm() -> WarmStartCache:
    """A cache over the training set whose unknown rows start at zero."""
    return WarmStartCache(SAMPLES, lambda data: torch.zeros(len(data[0]), HIDDEN, dtype=torch.float64))


def test_warm_starts_continue_the_iteration_and_resume_exactly(tmp_path):
    model, optimizer = make(backward="jfb")
    warm = make_warm()
    fit(model, optimizer, warm_loss, warm_sample, TrainConfig(steps=9, progress=False), warm=warm)
    reference, cached = weights(model), warm.state()
    assert warm.known.sum() == SAMPLES and warm.age.sum() == 9 * BATCH
    assert torch.isfinite(cached["values"]).all()

    def crashing(step: int, generator: torch.Generator):
        if step == 7:
            raise KeyboardInterrupt("simulated crash")
        return warm_sample(step, generator)

    config = TrainConfig(steps=9, checkpoint_every=3, progress=False, checkpoint_dir=str(tmp_path / "run"))
    model, optimizer = make(backward="jfb")
    with pytest.raises(KeyboardInterrupt):
        fit(model, optimizer, warm_loss, crashing, config, warm=make_warm())
    model, optimizer = make(seed=4, backward="jfb")
    resumed_warm = make_warm()
    history = fit(model, optimizer, warm_loss, warm_sample, config, warm=resumed_warm)
    assert history.start == 6
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, reference[name], err_msg=name)
    np.testing.assert_array_equal(resumed_warm.state()["values"].numpy(), cached["values"].numpy())
    np.testing.assert_array_equal(resumed_warm.age, cached["age"])


def test_warm_start_skips_rows_that_are_not_finite_and_checks_its_input():
    warm = make_warm()
    model, optimizer = make(backward="jfb")
    fit(model, optimizer, warm_loss, warm_sample, TrainConfig(steps=2, progress=False), warm=warm)
    row = int(np.flatnonzero(warm.known)[0])
    warm.values[row] = float("nan")
    data = (WARM_X[[row]], None)
    assert torch.equal(warm.get(np.array([row]), data), torch.zeros(1, HIDDEN, dtype=torch.float64))
    warm.reset(np.array([row]))
    assert not warm.known[row] and warm.age[row] == 0
    with pytest.raises(ValueError, match=r"out of range \[0, 12\)"):
        warm.get(np.array([SAMPLES]), data)
    with pytest.raises(ValueError, match="indices must be a 1-D integer array, got shape \\(8, 3\\)"):
        fit(*make(backward="jfb"), warm_loss, sample, TrainConfig(steps=1, progress=False), warm=make_warm())
    with pytest.raises(ConfigError, match="size must be a positive int"):
        WarmStartCache(0, lambda data: None)
