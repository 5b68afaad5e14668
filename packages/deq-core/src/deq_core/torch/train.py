"""``fit``: train a PyTorch model (a DEQ or anything containing one) for a number of optimizer steps.

The caller supplies the model, a ``torch.optim`` optimizer, ``loss_fn(model, batch)`` and the data, either
``sample(step, generator)`` (the trainer's ``torch.Generator``, checkpointed) or an iterable of batches
(fast-forwarded past the steps already done on resume, so it must yield the same sequence when re-created).
With ``warm=`` a :class:`~deq_core.training.WarmStartCache`, batches are ``(indices, data)`` and the loss is
``loss_fn(model, data, z0) -> (loss, z)``: each sample starts from its cached iterate and its new one is
stored back (see :func:`fit`).
Under ``torchrun`` (after :func:`init_distributed`) the model is wrapped in ``DistributedDataParallel``,
every rank draws the same global batch and trains on its share; rank 0 shows progress and writes
checkpoints. A run that resumes from a checkpoint reaches the same weights as one that never stopped.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from deq_core.torch import checkpoint
from deq_core.torch.deq import DEQ
from deq_core.torch.regularizers import cached_parametrizations, jacobian_frobenius
from deq_core.training import CheckpointDir, History, TrainConfig, WarmStartCache, run_steps

WARM = "warm.pt"

Sampler = Callable[[int, torch.Generator], Any]


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment; return ``(rank, world_size)``.

    Without ``torchrun`` (no ``WORLD_SIZE`` set) nothing happens and ``(0, 1)`` is returned. ``backend``
    defaults to ``nccl`` when CUDA is available (each rank then uses GPU ``LOCAL_RANK``), else ``gloo``.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE is set but this torch build has no torch.distributed")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"))
    return dist.get_rank(), dist.get_world_size()


def shard_batch(batch: Any, rank: int, world: int) -> Any:
    """Rank ``rank``'s contiguous dim-0 share of every tensor in ``batch`` (nested tuples/lists/dicts)."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0 or batch.shape[0] % world:
            raise ValueError(
                f"data parallel: a batch tensor of shape {tuple(batch.shape)} cannot be split evenly over "
                f"{world} ranks; make the global batch size a multiple of {world}"
            )
        size = batch.shape[0] // world
        return batch[rank * size : (rank + 1) * size]
    if isinstance(batch, tuple | list):
        return type(batch)(shard_batch(item, rank, world) for item in batch)
    if isinstance(batch, dict):
        return {key: shard_batch(value, rank, world) for key, value in batch.items()}
    return batch


class _JacobianRecorder:
    """Forward hooks on every :class:`DEQ` of a model that keep ``(cell, x, z*)`` of the calls of one step."""

    def __init__(self, model: nn.Module) -> None:
        self.calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
        self.active = False
        deqs = [m for m in model.modules() if isinstance(m, DEQ)]
        if not deqs:
            raise ValueError(
                f"TrainConfig.jacobian_weight > 0 but {type(model).__name__} contains no deq_core DEQ"
            )
        self.handles = [deq.register_forward_hook(self._hook, with_kwargs=True) for deq in deqs]

    def _hook(self, module: DEQ, args: tuple, kwargs: dict, output: tuple) -> None:
        if self.active:
            x = args[0] if args else kwargs["x"]
            self.calls.append((module.cell, x, output[0]))

    def penalty(self, probes: int) -> torch.Tensor:
        """The summed Hutchinson penalty of the recorded calls (which are then forgotten)."""
        if not self.calls:
            raise RuntimeError("TrainConfig.jacobian_weight > 0 but loss_fn called no DEQ of the model")
        total = sum(jacobian_frobenius(cell, z, x, probes) for cell, x, z in self.calls)
        self.calls.clear()
        return total

    def remove(self) -> None:
        """Detach the hooks."""
        for handle in self.handles:
            handle.remove()


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    batches: Sampler | Iterable[Any],
    config: TrainConfig,
    *,
    evaluate: Callable[[nn.Module, int], dict[str, float] | None] | None = None,
    scheduler: Any = None,
    warm: WarmStartCache | None = None,
) -> History:
    """Train ``model`` in place for ``config.steps`` optimizer steps (resuming from a checkpoint if any).

    Each step: draw the batch (``batches(step, generator)`` or ``next`` of the iterable), take this rank's
    share, compute ``loss_fn(model, batch)`` (``model`` is the DDP wrapper when distributed: call it, not its
    submodules) plus ``jacobian_weight`` times the Jacobian penalty, step ``optimizer`` and ``scheduler``.
    ``evaluate(model, step)`` runs on every rank in eval mode and returns metrics to log and checkpoint.
    Returns the :class:`~deq_core.training.History` of this call; losses are global-batch means.

    With ``warm`` (one process only), each batch is ``(indices, data)``: ``z0 = warm.get(indices, data)``,
    ``loss, z = loss_fn(model, data, z0)``, then ``warm.put(indices, z)`` with the gradient stopped; the cache
    is saved in every checkpoint and restored on resume.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a deq_core.training.TrainConfig, got {type(config).__name__}")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    distributed = config.data_parallel and dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    generator = torch.Generator().manual_seed(config.seed)
    directory = (
        CheckpointDir(config.checkpoint_dir, config.keep_checkpoints) if config.checkpoint_dir else None
    )
    start = 0
    if directory is not None and config.resume:
        latest = directory.latest()
        if latest is not None:
            checkpoint.load(directory, latest, model, optimizer, scheduler=scheduler, generator=generator)
            start = latest
    if start > config.steps:
        raise ValueError(
            f"checkpoint in {config.checkpoint_dir} is at step {start}, past TrainConfig.steps={config.steps}"
        )
    if warm is not None:
        if world > 1:
            raise ValueError("fit(warm=...) runs in one process only (each rank would cache its own share)")
        warm.bind(_TorchRows())
        if start:
            _load_warm(directory, start, warm, model)
    net = DistributedDataParallel(model) if world > 1 else model
    draw = _batch_source(batches, generator, start)
    recorder = _JacobianRecorder(model) if config.jacobian_weight > 0 else None

    def step(index: int) -> torch.Tensor:
        batch = draw(index)
        if world > 1:
            batch = shard_batch(batch, rank, world)
        net.train()
        optimizer.zero_grad(set_to_none=True)
        with cached_parametrizations(model):
            if recorder is not None:
                recorder.active = True
            try:
                if warm is None:
                    loss = loss_fn(net, batch)
                else:
                    indices, data = _warm_batch(batch, index)
                    loss, z = loss_fn(net, data, warm.get(indices, data))
                    warm.put(indices, z.detach())
            finally:
                if recorder is not None:
                    recorder.active = False
            _check_loss(loss, index)
            total = loss
            if recorder is not None:
                total = loss + config.jacobian_weight * recorder.penalty(config.jacobian_probes)
            total.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return loss.detach()

    def to_float(loss: torch.Tensor) -> float:
        if world > 1:
            loss = loss.clone()
            dist.all_reduce(loss)
            loss = loss / world
        return float(loss)

    def run_evaluation(done: int) -> dict[str, float] | None:
        model.eval()
        try:
            with cached_parametrizations(model):
                return evaluate(model, done)
        finally:
            model.train()

    def save(done: int, metrics: dict[str, float]) -> None:
        if rank == 0:
            meta = {
                "backend": "torch",
                "world_size": world,
                "metrics": metrics,
                "config": dataclasses.asdict(config),
            }
            extras = {WARM: _warm_bytes(warm)} if warm is not None else None
            checkpoint.save(
                directory,
                done,
                model,
                optimizer,
                scheduler=scheduler,
                generator=generator,
                metadata=meta,
                extras=extras,
            )
        if world > 1:
            dist.barrier()

    try:
        return run_steps(
            config,
            start,
            step,
            to_float=to_float,
            evaluate=run_evaluation if evaluate is not None else None,
            save=save if directory is not None else None,
            show=rank == 0,
            desc="train (torch)",
        )
    finally:
        if recorder is not None:
            recorder.remove()


def _batch_source(
    batches: Sampler | Iterable[Any], generator: torch.Generator, start: int
) -> Callable[[int], Any]:
    """``draw(step)`` for a sampler or an iterable (skipping the ``start`` batches already trained on)."""
    if callable(batches):
        return lambda index: batches(index, generator)
    if not isinstance(batches, Iterable):
        raise TypeError(
            "batches must be a sampler (step, generator) -> batch or an iterable, "
            f"got {type(batches).__name__}"
        )
    iterator = iter(batches)

    def draw(index: int) -> Any:
        try:
            return next(iterator)
        except StopIteration:
            raise ValueError(
                f"the batch iterable ran out at step {index}; TrainConfig.steps needs more batches"
            ) from None

    for index in range(start):
        draw(index)
    return draw


def _check_loss(loss: Any, index: int) -> None:
    """``loss_fn`` must return a scalar tensor."""
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor, got {shape} at step {index}")


class _TorchRows:
    """The :class:`~deq_core.training.warm.Rows` of torch tensors (on the cache's device)."""

    def zeros(self, size: int, like: torch.Tensor) -> torch.Tensor:
        return torch.zeros((size, *like.shape[1:]), dtype=like.dtype, device=like.device)

    def take(self, values: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        return values[torch.as_tensor(index, device=values.device)]

    def scatter(self, values: torch.Tensor, index: np.ndarray, rows: torch.Tensor) -> torch.Tensor:
        values[torch.as_tensor(index, device=values.device)] = rows.detach().to(values.dtype)
        return values

    def select(self, known: np.ndarray, cached: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        usable = torch.as_tensor(known, device=cached.device) & torch.isfinite(cached.flatten(1)).all(1)
        return torch.where(usable.reshape(-1, *([1] * (cached.dim() - 1))), cached, fresh)


def _warm_batch(batch: Any, index: int) -> tuple[Any, Any]:
    """``(indices, data)`` of a warm-started batch, or a clear error."""
    if not (isinstance(batch, tuple | list) and len(batch) == 2):
        raise ValueError(
            f"fit(warm=...): step {index}'s batch must be (indices, data), got {type(batch).__name__}"
        )
    indices, data = batch
    if isinstance(indices, torch.Tensor):
        indices = indices.cpu().numpy()
    return indices, data


def _warm_bytes(warm: WarmStartCache) -> bytes:
    """The cache's state as ``torch.save`` bytes (tensors only, read back with ``weights_only=True``)."""
    state = warm.state()
    buffer = io.BytesIO()
    torch.save(
        {
            "values": state["values"],
            "known": torch.from_numpy(state["known"]),
            "age": torch.from_numpy(state["age"]),
        },
        buffer,
    )
    return buffer.getvalue()


def _load_warm(directory: CheckpointDir, step: int, warm: WarmStartCache, model: nn.Module) -> None:
    """Restore the cache from the checkpoint of ``step`` (onto the model's device)."""
    directory.verify(step, [WARM])  # a CheckpointError naming the file when it is absent or damaged
    path = directory.path(step, WARM)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    state = torch.load(path, map_location=device, weights_only=True)
    warm.restore({"values": state["values"], "known": state["known"].numpy(), "age": state["age"].numpy()})
