"""``TrainConfig``: a validated description of a training run, and ``History``: what the run recorded."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from deq_core.errors import ConfigError


def _integer(name: str, value: Any, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if optional else ""
        raise ConfigError(f"TrainConfig.{name} must be an integer >= {minimum}{extra}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How long to train and what to do along the way; sized in optimizer steps, never in seconds.

    ``eval_every``/``checkpoint_every``/``log_every`` are step intervals (the last step always evaluates,
    checkpoints and logs when the feature is on). ``checkpoint_dir`` holds numbered checkpoints; with
    ``resume`` a run continues from the newest complete one. ``jacobian_weight`` > 0 adds the Hutchinson
    estimate of ``||J_f(z*)||_F^2 / d`` (``jacobian_probes`` probes) of every DEQ in the model to the loss.
    ``threads`` sets torch's intra-op thread count. ``data_parallel`` uses every rank (torch, under
    ``torchrun``) or every local device (JAX) and splits each global batch along its first axis.
    """

    steps: int
    seed: int = 0
    eval_every: int | None = None
    checkpoint_every: int | None = None
    checkpoint_dir: str | None = None
    keep_checkpoints: int = 3
    resume: bool = True
    log_every: int = 10
    jacobian_weight: float = 0.0
    jacobian_probes: int = 1
    threads: int | None = None
    progress: bool = True
    data_parallel: bool = True

    def __post_init__(self) -> None:
        _integer("steps", self.steps, 1)
        _integer("seed", self.seed, 0)
        _integer("eval_every", self.eval_every, 1, optional=True)
        _integer("checkpoint_every", self.checkpoint_every, 1, optional=True)
        _integer("keep_checkpoints", self.keep_checkpoints, 1)
        _integer("log_every", self.log_every, 1)
        _integer("jacobian_probes", self.jacobian_probes, 1)
        _integer("threads", self.threads, 1, optional=True)
        weight = self.jacobian_weight
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ConfigError(f"TrainConfig.jacobian_weight must be a finite number >= 0, got {weight!r}")
        for name in ("resume", "progress", "data_parallel"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"TrainConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str):
            raise ConfigError(
                f"TrainConfig.checkpoint_dir must be a path string, got {self.checkpoint_dir!r}"
            )
        if self.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ConfigError(
                "TrainConfig.checkpoint_every is set but checkpoint_dir is None; give a directory"
            )


@dataclass
class History:
    """What one call of ``fit`` saw: ``(step, loss)`` every ``log_every`` steps and ``(step, metrics)`` evals.

    ``start`` is the step the call began at (non-zero after a resume); steps count completed optimizer steps.
    """

    start: int = 0
    losses: list[tuple[int, float]] = field(default_factory=list)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
