"""The domain figures keep every value visible: zero-iteration warm starts (GLOP's optimum), baselines whose
bars are close, and metrics that are 0 at some budgets (which used to be clipped to 1e-12)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from deq_opt.evaluation.figures import (  # noqa: E402
    budget_metrics_figure,
    plot_budget_metrics,
    plot_warm_start,
    warm_start_figure,
)

TOLS = ("0.0001", "1e-06")
STARTS = {  # start: (iterations, seconds) at both tolerances; GLOP's optimum needs no PDLP iteration
    "cold": (288.0, 1.4e-3),
    "learned PDHG primal+dual": (224.0, 1.2e-3),
    "DEQ-GNN primal+dual": (224.0, 1.2e-3),
    "GLOP optimum primal+dual": (0.0, 9.5e-5),
}


def _comparison() -> dict:
    return {
        start: {tol: {"iterations": it, "seconds": sec, "solved": 1.0} for tol in TOLS}
        for start, (it, sec) in STARTS.items()
    }


def test_warm_start_shows_every_start_with_its_value() -> None:
    """Iterations on a linear axis; GLOP's 0 is a marker on the axis labelled "0"; every bar is labelled."""
    fig = warm_start_figure(_comparison(), "title")
    iterations, seconds = fig.axes[:2]
    assert iterations.get_yscale() == "linear" and iterations.get_ylim()[0] == 0
    markers = [line for line in iterations.get_lines() if list(line.get_ydata()) == [0]]
    assert len(markers) == len(TOLS)
    labels = [t.get_text() for t in iterations.texts]
    assert labels.count("0") == len(TOLS) and labels.count("224") == 2 * len(TOLS) and "288" in labels
    # seconds span a decade: a log axis whose range holds every bar, each labelled in milliseconds
    assert seconds.get_yscale() == "log"
    low, high = seconds.get_ylim()
    assert low < 9.5e-5 and high > 1.4e-3
    assert {t.get_text() for t in seconds.texts} >= {"1.4 ms", "0.095 ms"}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == list(STARTS)


def test_budget_metrics_mark_zeros_instead_of_clipping() -> None:
    """A metric that is 0 is named in the legend, not drawn at 1e-12, so the axis spans the real values."""
    budgets = [1, 2, 4]
    series = {"residual_mean": [0.5, 1e-2, 1e-4], "dual_infeasibility": [0.0] * 3, "gap": [0.3, 0.0, 0.1]}
    fig = budget_metrics_figure(budgets, {"model": series}, "title")
    (ax,) = fig.axes
    assert ax.get_ylim()[0] > 1e-6
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["residual_mean", "dual_infeasibility (0 at every t)", "gap (0 at t=2)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    drawn = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    assert np.isnan(drawn["gap (0 at t=2)"][1]) and not np.isnan(drawn["gap (0 at t=2)"][0])
    assert np.all(np.isnan(drawn["dual_infeasibility (0 at every t)"]))


def test_plots_write_png_files(tmp_path) -> None:
    """Both plot functions write a PNG and return its path."""
    paths = [
        plot_warm_start(_comparison(), tmp_path / "warm.png", "title"),
        plot_budget_metrics([1, 2], {"m": {"a": [1.0, 0.5]}}, tmp_path / "budget.png", "title"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
