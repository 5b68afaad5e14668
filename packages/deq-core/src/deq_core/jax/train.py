"""``fit``: train an Equinox model (a DEQ or anything containing one) for a number of optimizer steps.

The caller supplies the model, an ``optax`` optimizer, ``loss_fn(model, batch)`` and the data, either
``sample(step, key)`` (a fresh PRNG key split from the trainer's, which is checkpointed) or an iterable of
batches (fast-forwarded on resume, so it must yield the same sequence when re-created). With ``warm=`` a
:class:`~deq_core.training.WarmStartCache`, batches are ``(indices, data)`` and the loss is
``loss_fn(model, data, z0) -> (loss, z)`` (see :func:`fit`). One jitted step
computes the loss, the optional Jacobian penalty of every :class:`~deq_core.jax.DEQ` in the model, the
gradient and the update. With ``data_parallel`` and several devices the batch is sharded over them along
its first axis and the model replicated; XLA reduces the gradient across devices. Returns the trained
model (JAX arrays are immutable) and the run's history.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from deq_core.jax import checkpoint
from deq_core.jax.deq import DEQ
from deq_core.jax.regularizers import jacobian_frobenius, power_iterate, trainable
from deq_core.training import CheckpointDir, History, TrainConfig, WarmStartCache, run_steps

Sampler = Callable[[int, jax.Array], Any]
WARM = "warm.npz"


class _Recording:
    """Stands in for a :class:`DEQ` inside a traced loss and keeps ``(cell, x, z*)`` of each call."""

    def __init__(self, deq: DEQ, calls: list) -> None:
        self.deq, self.calls = deq, calls

    def __call__(self, x: jax.Array, z0: jax.Array | None = None, *, max_iter: int | None = None) -> Any:
        """Call the DEQ and record the call."""
        z, stats = self.deq(x, z0, max_iter=max_iter)
        self.calls.append((self.deq.cell, x, z))
        return z, stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self.deq, name)


def _is_deq(node: Any) -> bool:
    return isinstance(node, DEQ)


def _recording(model: Any, calls: list) -> Any:
    """``model`` with every DEQ replaced by a :class:`_Recording` that appends to ``calls``."""
    if _is_deq(model):
        return _Recording(model, calls)
    where = lambda tree: [n for n in jax.tree.leaves(tree, is_leaf=_is_deq) if _is_deq(n)]  # noqa: E731
    deqs = where(model)
    if not deqs:
        raise ValueError(
            f"TrainConfig.jacobian_weight > 0 but {type(model).__name__} contains no deq_core DEQ"
        )
    return eqx.tree_at(where, model, [_Recording(deq, calls) for deq in deqs])


def make_step(
    optimizer: optax.GradientTransformation,
    loss_fn: Callable[[Any, Any], Any],
    jacobian_weight: float = 0.0,
    jacobian_probes: int = 1,
    has_aux: bool = False,
) -> Callable:
    """The (unjitted) training step ``(model, opt_state, batch, key) -> (model, opt_state, loss)``.

    Advances every :class:`~deq_core.jax.regularizers.SpectralNorm` by one power-iteration step, then takes
    one optimizer step on the trainable arrays (:func:`~deq_core.jax.regularizers.trainable`) of
    ``loss_fn(model, batch) + jacobian_weight * penalty``. With ``has_aux``, ``loss_fn`` returns
    ``(loss, aux)`` and the step returns ``(model, opt_state, loss, aux)`` (aux with its gradient stopped).
    """

    def evaluate(model: Any, batch: Any) -> tuple[jax.Array, Any]:
        out = loss_fn(model, batch)
        loss, aux = out if has_aux else (out, None)
        return _scalar(loss), jax.lax.stop_gradient(aux)

    def step(model: Any, opt_state: Any, batch: Any, key: jax.Array) -> tuple[Any, ...]:
        model = power_iterate(model)
        params, rest = eqx.partition(model, trainable(model))

        def objective(params: Any) -> tuple[jax.Array, tuple[jax.Array, Any]]:
            current = eqx.combine(params, rest)
            if jacobian_weight == 0:
                loss, aux = evaluate(current, batch)
                return loss, (loss, aux)
            calls: list = []
            loss, aux = evaluate(_recording(current, calls), batch)
            if not calls:
                raise RuntimeError("TrainConfig.jacobian_weight > 0 but loss_fn called no DEQ of the model")
            keys = jax.random.split(key, len(calls))
            penalty = sum(
                jacobian_frobenius(cell, z, x, k, jacobian_probes)
                for (cell, x, z), k in zip(calls, keys, strict=True)
            )
            return loss + jacobian_weight * penalty, (loss, aux)

        (_, (loss, aux)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        model = eqx.combine(params, rest)
        return (model, opt_state, loss, aux) if has_aux else (model, opt_state, loss)

    return step


def _scalar(loss: Any) -> jax.Array:
    """``loss_fn`` must return a scalar array."""
    if not isinstance(loss, jax.Array) or loss.ndim != 0:
        shape = loss.shape if isinstance(loss, jax.Array) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar array, got {shape}")
    return loss


def fit(
    model: Any,
    optimizer: optax.GradientTransformation,
    loss_fn: Callable[[Any, Any], jax.Array],
    batches: Sampler | Iterable[Any],
    config: TrainConfig,
    *,
    evaluate: Callable[[Any, int], dict[str, float] | None] | None = None,
    warm: WarmStartCache | None = None,
) -> tuple[Any, History]:
    """Train ``model`` for ``config.steps`` optimizer steps (resuming from a checkpoint if any).

    Each step splits the run's key (``jax.random.key(config.seed)``, checkpointed) into the sampler's and
    the Jacobian probes' keys. ``evaluate(model, step)`` gets the model in inference mode and returns
    metrics to log and checkpoint. ``config.threads`` cannot be applied once JAX runs (set XLA flags before
    importing it); a warning says so. Returns ``(trained model, history)``.

    With ``warm``, each batch is ``(indices, data)``: ``z0 = warm.get(indices, data)`` (outside the jitted
    step), ``loss, z = loss_fn(model, data, z0)`` inside it, then ``warm.put(indices, z)``; the cache is saved
    in every checkpoint and restored on resume.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a deq_core.training.TrainConfig, got {type(config).__name__}")
    if config.threads is not None:
        warnings.warn(
            "TrainConfig.threads is not applied by the JAX trainer: limit XLA's CPU threads before importing "
            "jax (XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=N)",
            stacklevel=2,
        )
    key = jax.random.key(config.seed)
    opt_state = optimizer.init(eqx.filter(model, trainable(model)))
    directory = (
        CheckpointDir(config.checkpoint_dir, config.keep_checkpoints) if config.checkpoint_dir else None
    )
    start = 0
    if directory is not None and config.resume:
        latest = directory.latest()
        if latest is not None:
            model, opt_state, key = checkpoint.load(directory, latest, model, opt_state, key)
            start = latest
    if start > config.steps:
        raise ValueError(
            f"checkpoint in {config.checkpoint_dir} is at step {start}, past TrainConfig.steps={config.steps}"
        )

    if warm is not None:
        warm.bind(_JaxRows())
        if start:
            _load_warm(directory, start, warm)
    devices = tuple(jax.devices() if config.data_parallel else jax.devices()[:1])
    place_batch, place_state = _placement(devices)
    model, opt_state = place_state((model, opt_state))
    step_loss = loss_fn if warm is None else _WarmLoss(loss_fn)
    aux = warm is not None
    arguments = (optimizer, step_loss, config.jacobian_weight, config.jacobian_probes, devices, aux)
    try:
        jitted = _cached_step(*arguments)
    except TypeError:  # an unhashable optimizer or loss: compile for this call only
        jitted = _jitted_step(*arguments)

    draw = _batch_source(batches, start)
    state = {"model": model, "opt_state": opt_state, "key": key}

    def step(index: int) -> jax.Array:
        key, sample_key, probe_key = jax.random.split(state["key"], 3)
        batch = draw(index, sample_key)
        if warm is None:
            state["model"], state["opt_state"], loss = jitted(
                state["model"], state["opt_state"], place_batch(batch), probe_key
            )
        else:
            indices, data = _warm_batch(batch, index)
            z0 = warm.get(indices, data)
            state["model"], state["opt_state"], loss, z = jitted(
                state["model"], state["opt_state"], place_batch((data, z0)), probe_key
            )
            warm.put(indices, z)
        state["key"] = key
        return loss

    def run_evaluation(done: int) -> dict[str, float] | None:
        return evaluate(eqx.nn.inference_mode(state["model"]), done)

    def save(done: int, metrics: dict[str, float]) -> None:
        meta = {
            "backend": "jax",
            "devices": len(devices),
            "metrics": metrics,
            "config": dataclasses.asdict(config),
        }
        extras = {WARM: _warm_bytes(warm)} if warm is not None else None
        checkpoint.save(directory, done, state["model"], state["opt_state"], state["key"], meta, extras)

    history = run_steps(
        config,
        start,
        step,
        evaluate=run_evaluation if evaluate is not None else None,
        save=save if directory is not None else None,
        show=jax.process_index() == 0,
        desc="train (jax)",
    )
    return state["model"], history


def _jitted_step(
    optimizer: optax.GradientTransformation,
    loss_fn: Callable,
    jacobian_weight: float,
    jacobian_probes: int,
    devices: tuple,
    has_aux: bool = False,
) -> Callable:
    """:func:`make_step` under ``eqx.filter_jit``, keeping the model replicated and the batch sharded."""
    place_batch, place_state = _placement(devices)
    raw_step = make_step(optimizer, loss_fn, jacobian_weight, jacobian_probes, has_aux)

    @eqx.filter_jit
    def jitted(model: Any, opt_state: Any, batch: Any, key: jax.Array) -> tuple[Any, ...]:
        model, opt_state = place_state((model, opt_state))
        model, opt_state, *out = raw_step(model, opt_state, place_batch(batch), key)
        return (*place_state((model, opt_state)), *out)

    return jitted


# Repeated ``fit`` calls with the same optimizer and loss (resuming, sweeps) reuse one compiled step.
_cached_step = functools.lru_cache(maxsize=8)(_jitted_step)


def _placement(devices: tuple) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``(shard a batch over devices, replicate a state)``; identities on one device."""
    if len(devices) == 1:
        return (lambda tree: tree), (lambda tree: tree)
    mesh = jax.sharding.Mesh(np.asarray(devices), ("data",))
    batch_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    def place_batch(batch: Any) -> Any:
        for leaf in jax.tree.leaves(batch):
            if eqx.is_array_like(leaf) and (jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] % len(devices)):
                raise ValueError(
                    f"data parallel: a batch array of shape {jnp.shape(leaf)} cannot be split evenly over "
                    f"{len(devices)} devices; make the global batch size a multiple of {len(devices)}"
                )
        return eqx.filter_shard(batch, batch_sharding)

    return place_batch, lambda tree: eqx.filter_shard(tree, replicated)


def _batch_source(batches: Sampler | Iterable[Any], start: int) -> Callable[[int, jax.Array], Any]:
    """``draw(step, key)`` for a sampler or an iterable (skipping the ``start`` batches already used)."""
    if callable(batches):
        return batches
    if not isinstance(batches, Iterable):
        raise TypeError(
            f"batches must be a sampler (step, key) -> batch or an iterable, got {type(batches).__name__}"
        )
    iterator = iter(batches)

    def draw(index: int, key: jax.Array) -> Any:
        try:
            return next(iterator)
        except StopIteration:
            raise ValueError(
                f"the batch iterable ran out at step {index}; TrainConfig.steps needs more batches"
            ) from None

    for index in range(start):
        draw(index, None)
    return draw


@dataclasses.dataclass(frozen=True)
class _WarmLoss:
    """``loss_fn(model, data, z0)`` on a ``(data, z0)`` batch; hashable, so compiled steps are reused."""

    loss_fn: Callable[[Any, Any, Any], tuple[jax.Array, Any]]

    def __call__(self, model: Any, batch: tuple[Any, Any]) -> tuple[jax.Array, Any]:
        data, z0 = batch
        out = self.loss_fn(model, data, z0)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError("fit(warm=...): loss_fn(model, data, z0) must return (loss, z)")
        return out


class _JaxRows:
    """The :class:`~deq_core.training.warm.Rows` of JAX arrays."""

    def zeros(self, size: int, like: jax.Array) -> jax.Array:
        return jnp.zeros((size, *like.shape[1:]), like.dtype)

    def take(self, values: jax.Array, index: np.ndarray) -> jax.Array:
        return values[jnp.asarray(index)]

    def scatter(self, values: jax.Array, index: np.ndarray, rows: jax.Array) -> jax.Array:
        return _scatter(values, jnp.asarray(index), rows)

    def select(self, known: np.ndarray, cached: jax.Array, fresh: jax.Array) -> jax.Array:
        return _select(jnp.asarray(known), cached, fresh)


@functools.partial(jax.jit, donate_argnums=0)
def _scatter(values: jax.Array, index: jax.Array, rows: jax.Array) -> jax.Array:
    return values.at[index].set(rows.astype(values.dtype))


@jax.jit
def _select(known: jax.Array, cached: jax.Array, fresh: jax.Array) -> jax.Array:
    usable = known & jnp.isfinite(cached.reshape(cached.shape[0], -1)).all(1)
    return jnp.where(usable.reshape(-1, *([1] * (cached.ndim - 1))), cached, fresh)


def _warm_batch(batch: Any, index: int) -> tuple[np.ndarray, Any]:
    """``(indices, data)`` of a warm-started batch, or a clear error."""
    if not (isinstance(batch, tuple | list) and len(batch) == 2):
        raise ValueError(
            f"fit(warm=...): step {index}'s batch must be (indices, data), got {type(batch).__name__}"
        )
    indices, data = batch
    return np.asarray(indices), data


def _warm_bytes(warm: WarmStartCache) -> bytes:
    """The cache's state as ``.npz`` bytes."""
    state = warm.state()
    arrays = {"known": state["known"], "age": state["age"]}
    if state["values"] is not None:
        arrays["values"] = np.asarray(state["values"])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _load_warm(directory: CheckpointDir, step: int, warm: WarmStartCache) -> None:
    """Restore the cache from the checkpoint of ``step``."""
    directory.verify(step, [WARM])  # a CheckpointError naming the file when it is absent or damaged
    path = directory.path(step, WARM)
    with np.load(path, allow_pickle=False) as arrays:
        values = jnp.asarray(arrays["values"]) if "values" in arrays else None
        warm.restore({"values": values, "known": arrays["known"], "age": arrays["age"]})
