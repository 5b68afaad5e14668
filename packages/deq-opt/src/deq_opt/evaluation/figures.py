"""Domain figures (matplotlib, written atomically): the PDLP warm-start comparison and metrics per budget.

Every value stays visible: bars carry their values, a zero (PDLP needs no iteration from GLOP's optimum)
is a marker on the axis rather than a bar lost under a log scale, and metrics that are 0 say so in the
legend instead of being clipped to a floor that squashes the other curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deq_core.training import atomic_path

__all__ = ["budget_metrics_figure", "plot_budget_metrics", "plot_warm_start", "warm_start_figure"]


def _save(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path


def _label(value: float, key: str) -> str:
    """A bar's value as text: iterations whole, seconds in milliseconds."""
    return f"{value:.0f}" if key == "iterations" else f"{1e3 * value:.2g} ms"


def _bars(ax: Any, comparison: Mapping[str, Mapping[str, Mapping[str, float]]], key: str) -> None:
    """Grouped bars of ``key`` per start (colour) and tolerance (group), each labelled with its value.

    The axis is logarithmic only when every value is positive and they span a decade; a zero is drawn as
    a marker on the axis with its label, so that no start disappears.
    """
    starts, tols = list(comparison), list(next(iter(comparison.values())))
    width = 0.8 / len(starts)
    values = np.array([[comparison[s][t][key] for t in tols] for s in starts], dtype=float)
    positive = values[values > 0]
    log = positive.size == values.size and positive.max() >= 10 * positive.min()
    for i, start in enumerate(starts):
        where = np.arange(len(tols)) + i * width
        zero = values[i] == 0
        bars = ax.bar(where, values[i], width, label=start, color=f"C{i}")
        labels = ["" if z else _label(v, key) for v, z in zip(values[i], zero, strict=True)]
        ax.bar_label(bars, labels, rotation=90, padding=2, fontsize=7)
        for x in where[zero]:
            ax.plot([x], [0], "D", color=f"C{i}", ms=6, mec="black", clip_on=False)
            ax.annotate("0", (x, 0), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(np.arange(len(tols)) + 0.4 - width / 2, [f"tol {t}" for t in tols])
    ax.set_ylabel(f"PDLP {key} (mean)")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(top=positive.max() * 3)  # room for the labels
    else:
        ax.set_ylim(0, max(positive.max(initial=0.0), 1e-12) * 1.25)


def warm_start_figure(
    comparison: Mapping[str, Mapping[str, Mapping[str, float]]],
    title: str,
    by_budget: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """The figure of :func:`plot_warm_start` (a bare matplotlib ``Figure``; pyplot is not touched)."""
    from matplotlib.figure import Figure

    panels = 3 if by_budget else 2
    fig = Figure(figsize=(5 * panels, 4.6), layout="constrained")
    axes = fig.subplots(1, panels)
    for ax, key in zip(axes[:2], ("iterations", "seconds"), strict=True):
        _bars(ax, comparison, key)
    if by_budget:
        budgets = [int(t) for t in by_budget]
        tols = list(next(iter(comparison.values())))
        for tol in tols:
            speedup = [by_budget[str(t)]["pdlp"][tol]["speedup"] for t in budgets]
            axes[2].semilogx(budgets, speedup, marker="o", label=f"tol {tol}")
        axes[2].set_xticks(budgets, [str(t) for t in budgets])
        axes[2].minorticks_off()
        axes[2].axhline(1.0, color="gray", lw=0.8, ls="--")
        axes[2].set_xlabel("model iteration budget t")
        axes[2].set_ylabel("PDLP iterations: cold / warm")
        axes[2].legend(fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), fontsize=8)
    fig.suptitle(title)
    return fig


def plot_warm_start(
    comparison: Mapping[str, Mapping[str, Mapping[str, float]]],
    path: Path,
    title: str,
    by_budget: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Grouped bars of PDLP iterations and seconds per warm start and tolerance; with ``by_budget`` a third
    panel: PDLP speed-up from the model's primal+dual prediction against the model's iteration budget."""
    return _save(warm_start_figure(comparison, title, by_budget), path)


def _zeros_note(budgets: Sequence[int], values: np.ndarray) -> str:
    """``" (0 at every t)"``, ``" (0 at t=1, 2)"`` or ``""``: the budgets a log axis cannot show."""
    zero = values <= 0
    if not zero.any():
        return ""
    what = "0" if np.all(values[zero] == 0) else "<= 0"
    if zero.all():
        return f" ({what} at every t)"
    return f" ({what} at t={', '.join(str(t) for t, z in zip(budgets, zero, strict=True) if z)})"


def budget_metrics_figure(
    budgets: Sequence[int], metrics: Mapping[str, Mapping[str, Sequence[float]]], title: str
) -> Any:
    """The figure of :func:`plot_budget_metrics` (a bare matplotlib ``Figure``; pyplot is not touched)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    fig = Figure(figsize=(5.5 * len(metrics), 5), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, (model, series) in zip(axes, metrics.items(), strict=True):
        for name, raw in series.items():
            values = np.asarray(raw, dtype=float)
            shown = np.where(values > 0, values, np.nan)
            ax.loglog(budgets, shown, marker="o", label=name + _zeros_note(budgets, values))
        ax.set_xticks(list(budgets), [str(t) for t in budgets])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("iteration budget t")
        ax.set_title(model)
        ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.suptitle(title)
    return fig


def plot_budget_metrics(
    budgets: Sequence[int], metrics: Mapping[str, Mapping[str, Sequence[float]]], path: Path, title: str
) -> Path:
    """Log-log curves of every metric per iteration budget, one panel per model; metrics that are 0 at some
    budgets are marked so in the legend (a log axis cannot draw them)."""
    return _save(budget_metrics_figure(budgets, metrics, title), path)
