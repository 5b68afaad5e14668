"""``scaling.png``: quality and Lipschitz estimates against the iteration budget (matplotlib, Agg).

``budget_axis`` and ``value_scale`` are public so that domain figures drawn against the same budgets
(e.g. deq-opt's ``budget_metrics.png``) label their axes the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from deq_core.analysis.budgets import check_budgets
from deq_core.files import atomic_path

# Reference lines (explicit model, baselines) cycle through these so that equal values stay distinguishable.
_REFERENCE_STYLES = [("--", "D"), (":", "v"), ("-.", "P"), ((0, (5, 1, 1, 1, 1, 1)), "X"), ((0, (1, 3)), "*")]


def _series(values: list) -> list[float]:
    """Report values with null (diverged) drawn as a gap."""
    return [float("nan") if v is None else v for v in values]


def _labelled(budgets: Sequence[int], min_gap: float) -> set[int]:
    """The budgets that get a tick label: first and last, and between them every one at least ``min_gap``
    decades from its labelled neighbours (so that many close budgets do not print over one another)."""
    shown = [budgets[0]]
    for t in budgets[1:-1]:
        if math.log10(t / shown[-1]) >= min_gap and math.log10(budgets[-1] / t) >= min_gap:
            shown.append(t)
    return {*shown, budgets[-1]}


def budget_axis(ax: Any, budgets: Sequence[int]) -> None:
    """Log x axis with plain integer tick labels at the budgets themselves (``1, 2, 4``, not ``2×10⁰``);
    ``budgets`` must be increasing integers >= 1 (a ``ConfigError`` names a bad one)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    budgets = check_budgets(budgets)
    shown = _labelled(budgets, math.log10(budgets[-1] / budgets[0]) / 20)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(budgets))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: str(round(v)) if round(v) in shown else ""))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def value_scale(ax: Any, values: Iterable[float | None], decades: float = 2.0) -> str:
    """Pick and set the y scale for ``values`` (None and NaN ignored); return ``"linear"``, ``"log"`` or
    ``"symlog"``.

    Log when every value is positive and they span at least ``decades`` decades; linear when they span less,
    or when any value is negative. Exact zeros never set the range: a zero is not clipped to a tiny number
    (``1e-12`` spent eight empty decades and squashed every curve into the top of the panel), and a linear
    axis would flatten everything below the largest value onto the zero line. Instead zeros next to positives
    spanning ``decades`` give a symlog axis whose linear part ends at the decade of the smallest positive
    value: the positives keep their decades, the zeros sit on a row at the bottom, just below that decade,
    at a tick labelled ``0``.
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    positive = [v for v in finite if v > 0]
    span = math.log10(max(positive) / min(positive)) if positive else 0.0
    if not positive or any(v < 0 for v in finite) or span < decades:
        scale = "linear"
    elif len(positive) == len(finite):
        scale = "log"
    else:
        threshold = 10.0 ** math.floor(math.log10(min(positive)))
        ax.set_yscale("symlog", linthresh=threshold, linscale=0.5)
        ax.set_ylim(bottom=-0.4 * threshold)  # nothing is negative: only a margin below the zero row
        return "symlog"
    ax.set_yscale(scale)
    return scale


def _reference(ax: Any, value: float, label: str, color: str, k: int, count: int) -> None:
    """A horizontal line at ``value`` with a marker at its own x (the ``k``-th of ``count``), so lines at
    the same value (e.g. several exact baselines at 0) show every marker; the legend names the value."""
    linestyle, marker = _REFERENCE_STYLES[k % len(_REFERENCE_STYLES)]
    where = (2 * k + 1) / (2 * count + 1)  # off the centre, where a budget often is
    ax.plot(
        [0.0, where, 1.0],
        [value] * 3,
        transform=ax.get_yaxis_transform(),  # x in axes fractions, y in data: spans the panel at any x scale
        color=color,
        linestyle=linestyle,
        marker=marker,
        markevery=[1],
        label=f"{label} = {value:.3g}",
    )


def scaling_figure(report: Mapping[str, Any]) -> Any:
    """The report's scaling curves as a matplotlib ``Figure`` (two panels, see :func:`plot_scaling`)."""
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; pyplot's global state is untouched

    iterations = report["iterations"]
    quality, lipschitz = report["quality"], report["lipschitz"]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_q, ax_l = fig.subplots(1, 2)

    ax_q.plot(iterations, _series(quality["implicit"]), "o-", color="C0", label="implicit (t iterations)")
    references = [("explicit", quality["explicit"], "C1")] if quality["explicit"] is not None else []
    references += [
        (name, entry["value"], f"C{k + 2}")
        for k, (name, entry) in enumerate(quality["baselines"].items())
        if entry["value"] is not None
    ]
    for k, (name, value, color) in enumerate(references):
        _reference(ax_q, value, name, color, k, len(references))
    better = "higher is better" if quality["higher_is_better"] else "lower is better"
    ax_q.set(xlabel="iterations t", ylabel=f"{quality['metric']} ({better})", title="quality")
    value_scale(ax_q, [*quality["implicit"], *(value for _, value, _ in references)])
    budget_axis(ax_q, iterations)
    ax_q.legend(fontsize="small")

    styles = {"max": ("s-", "C0"), "mean": ("o-", "C4"), "local": ("^-", "C3")}
    explicit = {key: value for key, value in lipschitz.get("explicit", {}).items() if value is not None}
    for key, (marker, color) in styles.items():
        if key in lipschitz:
            ax_l.plot(iterations, _series(lipschitz[key]), marker, color=color, label=f"implicit {key}")
    lines = [key for key in styles if key in explicit]
    for k, key in enumerate(lines):
        _reference(ax_l, explicit[key], f"explicit {key}", styles[key][1], k, len(lines))
    ax_l.set(xlabel="iterations t", ylabel="Lipschitz estimate", title="Lipschitz of x -> y_t")
    value_scale(ax_l, [*(v for key in styles for v in lipschitz.get(key, [])), *explicit.values()], decades=1)
    budget_axis(ax_l, iterations)
    ax_l.legend(fontsize="small")
    fig.suptitle(f"{report['domain']}/{report['task']} ({report['backend']}, {report['device']})")
    return fig


def plot_scaling(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Draw the report's scaling curves to ``path`` (PNG, written atomically); return the path.

    Left: the metric of the implicit model per budget, with the explicit model and every classical baseline
    as horizontal lines (each with its own line style, a marker at its own x, and its value in the legend).
    Right: finite-difference Lipschitz max and mean and the local (power-iteration) estimate per budget, with
    the explicit model's estimates as horizontal lines. The x axes are log with integer labels at the budgets;
    the y scales follow :func:`value_scale` (the Lipschitz panel goes log from one decade, the quality panel
    from two).
    """
    fig = scaling_figure(report)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=110)
    return Path(path)
