"""Domain figures (matplotlib, written atomically): the PDLP warm-start comparison and metrics per budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.training import atomic_path

__all__ = ["plot_budget_metrics", "plot_warm_start"]


def plot_warm_start(
    comparison: Mapping[str, Mapping[str, Mapping[str, float]]],
    path: Path,
    title: str,
    by_budget: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Grouped bars of PDLP iterations and seconds per warm start and tolerance; with ``by_budget`` a third
    panel: PDLP speed-up from the model's primal+dual prediction against the model's iteration budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = list(comparison)
    tols = list(next(iter(comparison.values())))
    panels = 3 if by_budget else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    width = 0.8 / len(starts)
    if by_budget:
        budgets = [int(t) for t in by_budget]
        for tol in tols:
            speedup = [by_budget[str(t)]["pdlp"][tol]["speedup"] for t in budgets]
            axes[2].semilogx(budgets, speedup, marker="o", label=f"tol {tol}")
        axes[2].set_xticks(budgets, [str(t) for t in budgets])
        axes[2].minorticks_off()
        axes[2].axhline(1.0, color="gray", lw=0.8, ls="--")
        axes[2].set_xlabel("model iteration budget t")
        axes[2].set_ylabel("PDLP iterations: cold / warm")
        axes[2].legend(fontsize=8)
    for ax, key in zip(axes[:2], ("iterations", "seconds"), strict=True):
        for i, start in enumerate(starts):
            values = [comparison[start][tol][key] for tol in tols]
            ax.bar(np.arange(len(tols)) + i * width, values, width, label=start)
        ax.set_xticks(np.arange(len(tols)) + 0.4 - width / 2, [f"tol {t}" for t in tols])
        ax.set_ylabel(f"PDLP {key} (mean)")
        ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def plot_budget_metrics(
    budgets: Sequence[int], metrics: Mapping[str, Mapping[str, Sequence[float]]], path: Path, title: str
) -> Path:
    """Log-log curves of every metric per iteration budget, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, (model, series) in zip(axes[0], metrics.items(), strict=True):
        for name, values in series.items():
            ax.loglog(budgets, np.maximum(np.asarray(values, float), 1e-12), marker="o", label=name)
        ax.set_xlabel("iteration budget t")
        ax.set_title(model)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path
