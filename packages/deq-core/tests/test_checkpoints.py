"""Tamper-evident checkpoints in each installed backend: every damage a fault sweep found is caught.

A run checkpoints at steps 2, 4 and 6; then step 6 is damaged one way (a flipped byte in the model or the
optimizer-state file, step 4's model copied over step 6's, a damaged header, a missing file). Loading step 6
explicitly raises a ``CheckpointError`` naming the file; resuming warns, naming the file, falls back to step
4 and reaches the weights of the run that was never damaged.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from deq_core.errors import CheckpointError
from deq_core.training import CheckpointDir, TrainConfig

STEPS, EVERY, BATCH = 6, 2, 8
INSTALLED = [name for name in ("torch", "jax") if importlib.util.find_spec(name) is not None]


class TorchRun:
    """A tiny linear regression trained by :func:`deq_core.torch.train.fit`."""

    files = {"model": "model.safetensors", "state": "state.pt"}

    def __init__(self) -> None:
        import torch

        from deq_core.torch import checkpoint
        from deq_core.torch.train import fit

        self.torch, self.checkpoint, self.fit = torch, checkpoint, fit

    def make(self) -> tuple:
        torch = self.torch
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1).double()
        return model, torch.optim.Adam(model.parameters(), lr=0.05)

    def sample(self, step: int, generator) -> tuple:
        x = self.torch.randn(BATCH, 3, generator=generator, dtype=self.torch.float64)
        return x, x.sum(dim=1, keepdim=True)

    @staticmethod
    def loss(model, batch) -> object:
        x, y = batch
        return ((model(x) - y) ** 2).mean()

    def train(self, directory: Path) -> list[np.ndarray]:
        """Train (resuming from ``directory`` if it holds checkpoints) and return the weights."""
        model, optimizer = self.make()
        self.fit(model, optimizer, self.loss, self.sample, config(directory))
        return [p.detach().numpy().copy() for p in model.parameters()]

    def load(self, directory: Path, step: int) -> None:
        model, optimizer = self.make()
        self.checkpoint.load(CheckpointDir(directory), step, model, optimizer)


class JaxRun:
    """The same regression trained by :func:`deq_core.jax.train.fit`."""

    files = {"model": "model.eqx", "state": "state.eqx"}

    def __init__(self) -> None:
        import equinox as eqx
        import jax
        import jax.numpy as jnp
        import optax

        from deq_core.jax import checkpoint
        from deq_core.jax.regularizers import trainable
        from deq_core.jax.train import fit

        self.jax, self.jnp, self.eqx, self.checkpoint, self.fit = jax, jnp, eqx, checkpoint, fit
        self.trainable = trainable
        self.optimizer = optax.adam(0.05)  # one optimizer and one loss: fit compiles its step once

    def make(self) -> object:
        return self.eqx.nn.Linear(3, 1, key=self.jax.random.key(0))

    def sample(self, step: int, key) -> tuple:
        x = self.jax.random.normal(key, (BATCH, 3))
        return x, x.sum(axis=1, keepdims=True)

    def train(self, directory: Path) -> list[np.ndarray]:
        model, _ = self.fit(self.make(), self.optimizer, _jax_loss, self.sample, config(directory))
        return [np.asarray(leaf) for leaf in self.jax.tree.leaves(self.eqx.filter(model, self.eqx.is_array))]

    def load(self, directory: Path, step: int) -> None:
        model = self.make()
        opt_state = self.optimizer.init(self.eqx.filter(model, self.trainable(model)))
        self.checkpoint.load(CheckpointDir(directory), step, model, opt_state, self.jax.random.key(0))


def _jax_loss(model, batch) -> object:
    import jax
    import jax.numpy as jnp

    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


RUNS = {"torch": TorchRun, "jax": JaxRun}


def config(directory: Path) -> TrainConfig:
    """Checkpoint every two steps into ``directory`` and resume from it."""
    return TrainConfig(steps=STEPS, checkpoint_every=EVERY, checkpoint_dir=str(directory), progress=False)


def flip_byte(directory: CheckpointDir, name: str) -> None:
    """Invert one byte in the middle of step 6's file (inside the weights or the optimizer's moments)."""
    path = directory.path(6, name)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def damage_header(directory: CheckpointDir, name: str) -> None:
    """Overwrite the first eight bytes of step 6's file (the safetensors header length; an npy header)."""
    path = directory.path(6, name)
    data = bytearray(path.read_bytes())
    data[:8] = b"\xff" * 8
    path.write_bytes(bytes(data))


def copy_from_step_4(directory: CheckpointDir, name: str) -> None:
    """Replace step 6's file by step 4's (same size, other weights)."""
    shutil.copyfile(directory.path(4, name), directory.path(6, name))


def remove(directory: CheckpointDir, name: str) -> None:
    """Delete step 6's file."""
    directory.path(6, name).unlink()


# Each fault: which file of step 6 it damages, and how.
FAULTS = {
    "flipped byte in the model": ("model", flip_byte),
    "flipped byte in the state": ("state", flip_byte),
    "model of step 4 copied over": ("model", copy_from_step_4),
    "damaged header": ("model", damage_header),
    "missing state": ("state", remove),
}


@pytest.fixture(params=INSTALLED, scope="module")
def run(request) -> TorchRun | JaxRun:
    """The regression run of one installed backend."""
    return RUNS[request.param]()


@pytest.fixture(scope="module")
def trained(run, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A checkpoint directory holding steps 2, 4 and 6, and the weights the run ended with."""
    directory = tmp_path_factory.mktemp("checkpoints")
    weights = run.train(directory)
    assert CheckpointDir(directory).steps() == [2, 4, 6]
    return directory, weights


@pytest.mark.parametrize("fault", FAULTS)
def test_damaged_checkpoint_is_refused_and_resume_falls_back(run, trained, tmp_path, fault):
    source, reference = trained
    directory = CheckpointDir(tmp_path / "run")
    shutil.copytree(source, directory.directory)
    kind, damage = FAULTS[fault]
    damage(directory, run.files[kind])
    damaged = directory.path(6, run.files[kind]).name

    with pytest.raises(CheckpointError, match=damaged):
        run.load(directory.directory, 6)
    run.load(directory.directory, 4)  # the older checkpoint is intact and loads

    with pytest.warns(UserWarning, match=f"ignoring checkpoint 6: .*{damaged}"):
        assert directory.latest() == 4
    with pytest.warns(UserWarning, match=damaged):
        resumed = run.train(directory.directory)  # steps 5 and 6 again, from step 4
    for a, b in zip(resumed, reference, strict=True):
        np.testing.assert_array_equal(a, b)
    assert directory.latest() == 6  # step 6 was written anew


def test_checkpoint_records_the_step_and_a_checksum_per_file(run, trained):
    directory = CheckpointDir(trained[0])
    manifest = directory.verify(6)
    assert manifest["step"] == 6
    assert sorted(manifest["files"]) == sorted(run.files.values())
    for entry in manifest["files"].values():
        assert len(entry["sha256"]) == 64 and entry["bytes"] > 0
