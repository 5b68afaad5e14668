"""``scaling.png``: quality and Lipschitz estimates against the iteration budget (matplotlib, Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deq_core.files import atomic_path


def _series(values: list) -> list[float]:
    """Report values with null (diverged) drawn as a gap."""
    return [float("nan") if v is None else v for v in values]


def plot_scaling(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Draw the report's scaling curves to ``path`` (PNG, written atomically); return the path.

    Left: the metric of the implicit model per budget, with the explicit model and every classical baseline
    as horizontal lines. Right: finite-difference Lipschitz max and mean and the local (power-iteration)
    estimate per budget, log scale, with the explicit model's estimates as horizontal lines.
    """
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; pyplot's global state is untouched

    iterations = report["iterations"]
    quality, lipschitz = report["quality"], report["lipschitz"]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_q, ax_l = fig.subplots(1, 2)

    ax_q.plot(iterations, _series(quality["implicit"]), "o-", color="C0", label="implicit (t iterations)")
    if quality["explicit"] is not None:
        ax_q.axhline(quality["explicit"], color="C1", linestyle="--", label="explicit")
    for k, (name, entry) in enumerate(quality["baselines"].items()):
        if entry["value"] is not None:
            ax_q.axhline(entry["value"], color=f"C{k + 2}", linestyle=":", label=name)
    better = "higher is better" if quality["higher_is_better"] else "lower is better"
    ax_q.set(xlabel="iterations t", ylabel=f"{quality['metric']} ({better})", xscale="log", title="quality")
    ax_q.legend(fontsize="small")

    styles = {"max": ("s-", "C0"), "mean": ("o-", "C4"), "local": ("^-", "C3")}
    explicit = lipschitz.get("explicit", {})
    for key, (marker, color) in styles.items():
        if key in lipschitz:
            ax_l.plot(iterations, _series(lipschitz[key]), marker, color=color, label=f"implicit {key}")
        if explicit.get(key) is not None:
            ax_l.axhline(explicit[key], color=color, linestyle="--", alpha=0.7, label=f"explicit {key}")
    positive = [v for key in styles for v in lipschitz.get(key, []) if v is not None and v > 0]
    ax_l.set(xlabel="iterations t", ylabel="Lipschitz estimate", xscale="log", title="Lipschitz of x -> y_t")
    if positive:
        ax_l.set_yscale("log")
    ax_l.legend(fontsize="small")
    fig.suptitle(f"{report['domain']}/{report['task']} ({report['backend']}, {report['device']})")

    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=110)
    return Path(path)
