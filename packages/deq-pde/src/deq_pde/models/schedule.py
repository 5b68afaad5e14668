"""The training schedule both backends share: epochs of shuffled minibatches through deq-core's ``fit``.

The torch and JAX trainers build their optimizer and hand the rest to :func:`fit_epochs`, which calls
``deq_core.{torch,jax}.train.fit``. Each epoch visits the samples in a fresh random order drawn from the
backend's seeded generator (the order the models were always trained in); :class:`EpochBatches` replays that
stream, so a resumed run draws the same batches as one that never stopped. An FNO-DEQ warm-starts each
sample from its last hidden state through deq-core's :class:`~deq_core.training.WarmStartCache`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from deq_core.training import History, TrainConfig, WarmStartCache
from deq_pde.models.fourier import explicit_loss, implicit_loss
from deq_pde.models.settings import TrainSettings


class EpochBatches:
    """Sample indices of optimizer step ``k``: minibatch ``k mod B`` of epoch ``k // B`` (B per epoch).

    ``orders()`` starts the stream of epoch orders (permutations of ``range(n)``) afresh; it is replayed
    from the start whenever a step lies before the current epoch (a resumed run).
    """

    def __init__(self, n: int, batch: int, orders: Callable[[], Iterator[np.ndarray]]) -> None:
        self.n, self.batch, self.orders = n, batch, orders
        self.per_epoch = -(-n // batch)
        self._stream: Iterator[np.ndarray] | None = None
        self._epoch, self._order = -1, np.arange(0)

    def __call__(self, step: int) -> np.ndarray:
        """The indices (an int numpy array) of the samples of step ``step``."""
        epoch, k = divmod(step, self.per_epoch)
        if self._stream is None or epoch < self._epoch:
            self._stream, self._epoch = self.orders(), -1
        while self._epoch < epoch:
            self._order, self._epoch = np.asarray(next(self._stream)), self._epoch + 1
        return self._order[k * self.batch : (k + 1) * self.batch]


def permutations(n: int, seed: int) -> Iterator[np.ndarray]:
    """Epoch orders from numpy's ``default_rng(seed)``: one ``permutation(n)`` per epoch."""
    rng = np.random.default_rng(seed)
    while True:
        yield rng.permutation(n)


def train_config(
    settings: TrainSettings,
    n: int,
    seed: int,
    checkpoint_dir: str | None = None,
    checkpoint_every: int | None = None,
    stop_after: int | None = None,
) -> TrainConfig:
    """The run's :class:`TrainConfig`: every loss logged; checkpoints in ``checkpoint_dir`` if given.

    ``checkpoint_every`` defaults to the end of the run. ``stop_after`` ends the run after that many
    optimizer steps of the schedule (a later call with the same ``checkpoint_dir`` resumes it); by default
    it runs all ``settings.steps(n)``.
    """
    steps = settings.steps(n) if stop_after is None else stop_after
    every = checkpoint_every if checkpoint_every is not None or checkpoint_dir is None else steps
    return TrainConfig(
        steps=steps, seed=seed, log_every=1, checkpoint_dir=checkpoint_dir, checkpoint_every=every
    )


def fit_epochs(
    fit: Callable,
    model: Any,
    optimizer: Any,
    data: tuple[Any, Any],
    settings: TrainSettings,
    seed: int,
    orders: Callable[[], Iterator[np.ndarray]],
    loss_dtype: type,
    checkpoints: dict[str, Any],
    **options: Any,
) -> tuple[Any, list[float]]:
    """``fit(model, optimizer, loss, batches, config, **options)`` over the epochs of ``settings``.

    ``data`` is ``(inputs, targets)``; an FNO-DEQ (a model with a ``deq``) is warm-started per sample.
    ``checkpoints`` are the keywords of :func:`train_config`. Returns what ``fit`` returns and the mean loss
    of each epoch it ran whole (summed in ``loss_dtype``, as the trainers always did).
    """
    inputs, targets = data
    if inputs.shape != targets.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must match")
    warm = hasattr(model, "deq")
    n = inputs.shape[0]
    indices = EpochBatches(n, settings.batch, orders)
    config = train_config(settings, n, seed, **checkpoints)

    def batches(step: int, _: Any) -> tuple:
        index = indices(step)
        data = (inputs[index], targets[index])
        return (index, data) if warm else data

    if warm:
        shape, dtype = (model.codec.lift.weight.shape[0], *inputs.shape[1:]), model.codec.grid.dtype
        xp = array_namespace(inputs)
        zeros = lambda data: xp.zeros((data[0].shape[0], *shape), dtype=dtype, device=device(inputs))  # noqa: E731
        cache = WarmStartCache(n, zeros)
        result = fit(model, optimizer, implicit_loss, batches, config, warm=cache, **options)
    else:
        result = fit(model, optimizer, explicit_loss, batches, config, **options)
    history = result[1] if isinstance(result, tuple) else result
    return result, epoch_means(history, n, settings.batch, loss_dtype)


def epoch_means(history: History, n: int, batch: int, dtype: type = np.float32) -> list[float]:
    """Mean loss of each epoch ``history`` saw whole (weighted by batch size, summed in ``dtype``)."""
    per_epoch = -(-n // batch)
    losses = dict(history.losses)
    last = max(losses, default=history.start)
    means = []
    for epoch in range(-(-history.start // per_epoch), last // per_epoch):
        total = dtype(0)
        for k in range(per_epoch):
            size = min(batch, n - k * batch)
            total = total + dtype(losses[epoch * per_epoch + k + 1]) * dtype(size)
        means.append(float(total) / n)
    return means
