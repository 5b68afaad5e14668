"""``run_steps``: the backend-free step loop shared by the trainers (progress bar, logging, evals, saves)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deq_core.training.config import History, TrainConfig


def run_steps(
    config: TrainConfig,
    start: int,
    step: Callable[[int], Any],
    *,
    to_float: Callable[[Any], float] = float,
    evaluate: Callable[[int], dict[str, float] | None] | None = None,
    save: Callable[[int, dict[str, float]], None] | None = None,
    show: bool = True,
    desc: str = "train",
) -> History:
    """Run ``step(i)`` for ``i`` in ``[start, config.steps)``; ``step`` returns the loss (any scalar).

    The loss is turned into a float (``to_float``, which may synchronise a device or reduce across ranks)
    only every ``log_every`` steps. After step ``i`` (``i + 1`` steps done) ``evaluate(i + 1)`` runs every
    ``eval_every`` steps and ``save(i + 1, last_metrics)`` every ``checkpoint_every``; both also run after the
    final step. ``show`` (``progress`` and this process's role) turns the tqdm bar on.
    """
    history = History(start=start)
    bar = _progress_bar(config, start, desc) if (show and config.progress) else None
    metrics: dict[str, float] = {}
    try:
        for index in range(start, config.steps):
            loss = step(index)
            done = index + 1
            last = done == config.steps
            if done % config.log_every == 0 or last:
                value = to_float(loss)
                history.losses.append((done, value))
                if bar is not None:
                    bar.set_postfix(loss=f"{value:.4g}", refresh=False)
            if (
                evaluate is not None
                and config.eval_every is not None
                and (done % config.eval_every == 0 or last)
            ):
                metrics = dict(evaluate(done) or {})
                history.evaluations.append((done, metrics))
                if bar is not None and metrics:
                    bar.write(f"step {done}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
            if (
                save is not None
                and config.checkpoint_every is not None
                and (done % config.checkpoint_every == 0 or last)
            ):
                save(done, metrics)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return history


def _progress_bar(config: TrainConfig, start: int, desc: str) -> Any:
    """A tqdm bar over the run's steps, starting at ``start``."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(
            "TrainConfig.progress=True needs tqdm: pip install tqdm (or set progress=False)"
        ) from None
    return tqdm(total=config.steps, initial=start, desc=desc, unit="step", dynamic_ncols=True)
