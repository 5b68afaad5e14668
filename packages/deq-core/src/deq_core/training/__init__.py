"""Backend-free training machinery: run configuration, step loop, atomic files, checkpoints, executors,
warm starts.

Nothing here imports torch or jax; the trainers in :mod:`deq_core.torch.train` and :mod:`deq_core.jax.train`
build on it.
"""

from deq_core.files import atomic_path, atomic_write
from deq_core.training.checkpoints import CheckpointDir
from deq_core.training.config import History, TrainConfig
from deq_core.training.executor import map_chunks, spawn_seeds
from deq_core.training.loop import run_steps
from deq_core.training.warm import WarmStartCache

__all__ = [
    "CheckpointDir",
    "History",
    "TrainConfig",
    "WarmStartCache",
    "atomic_path",
    "atomic_write",
    "map_chunks",
    "run_steps",
    "spawn_seeds",
]
