"""What ``scaling.png`` shows, read off the matplotlib Axes: budget tick labels, reference lines, y scales."""

import importlib.util
import math

import pytest

from deq_core.analysis.plot import budget_axis, scaling_figure, value_scale
from deq_core.analysis.report import build_report

pytest.importorskip("matplotlib")
BACKEND = "torch" if importlib.util.find_spec("torch") is not None else "jax"  # an installed one


def _report(iterations=(1, 2, 4, 8, 16), implicit=None, explicit=0.25, baselines=None, lipschitz=None):
    """A valid report over ``iterations``; the keyword arguments replace its quality and Lipschitz parts."""
    n = len(iterations)
    return build_report(
        domain="toy",
        task="sensing",
        backend=BACKEND,
        device="cpu",
        iterations=list(iterations),
        metric="mse",
        higher_is_better=False,
        implicit=implicit if implicit is not None else [0.3 - 0.01 * k for k in range(n)],
        explicit=explicit,
        baselines=baselines if baselines is not None else {"least_squares": {"value": 0.4, "seconds": 0.01}},
        lipschitz={"max": [1.0 + k for k in range(n)], "mean": [0.5] * n, **(lipschitz or {})},
        params={"implicit": 100, "explicit": 98},
        seconds=1.5,
        config={"budgets": list(iterations)},
    )


def _tick_labels(fig, ax):
    """The x tick labels as drawn (major, then minor)."""
    fig.canvas.draw()
    major = [t.get_text() for t in ax.get_xticklabels()]
    minor = [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    return major, minor


def test_budget_axes_label_the_budgets_as_plain_integers():
    fig = scaling_figure(_report())
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert list(ax.get_xticks()) == [1, 2, 4, 8, 16]
        assert _tick_labels(fig, ax) == (["1", "2", "4", "8", "16"], [])  # not 10^0, 2x10^0 ...


def test_many_budgets_keep_a_tick_each_but_labels_do_not_crowd():
    budgets = list(range(1, 41))
    fig = scaling_figure(_report(iterations=budgets))
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == budgets
    major, _ = _tick_labels(fig, ax)
    shown = [int(text) for text in major if text]
    assert shown[0] == 1 and shown[-1] == 40 and len(shown) < len(budgets)
    gaps = [math.log10(b / a) for a, b in zip(shown, shown[1:], strict=False)]
    assert min(gaps) >= math.log10(40) / 20


def test_a_single_budget_is_labelled_alone():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.plot([4], [1.0], "o")
    budget_axis(ax, [4])
    low, high = ax.get_xlim()
    assert low < 4 < high
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4"]


def _reference_lines(ax, names):
    """The reference line of each name (by legend label), in order."""
    lines = {line.get_label().split(" = ")[0]: line for line in ax.get_lines()}
    return [lines[name] for name in names]


def test_baselines_at_the_same_value_each_stay_visible():
    baselines = {name: {"value": 0.0, "seconds": 0.1} for name in ("exact", "glop", "pdlp")}
    fig = scaling_figure(_report(explicit=0.0, baselines=baselines))
    ax = fig.axes[0]
    lines = _reference_lines(ax, ["explicit", "exact", "glop", "pdlp"])
    assert all(set(line.get_ydata()) == {0.0} for line in lines)
    styles = [str(line.get_linestyle()) for line in lines]
    assert all(a != b for a, b in zip(styles, styles[1:], strict=False))  # neighbours in the legend differ
    assert len({line.get_marker() for line in lines}) == 4
    marker_x = [line.get_xdata()[line.get_markevery()[0]] for line in lines]  # in axes fractions
    assert len(set(marker_x)) == 4 and all(0 < x < 1 for x in marker_x)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert {"explicit = 0", "exact = 0", "glop = 0", "pdlp = 0"} <= set(legend)


def test_explicit_lipschitz_lines_are_reference_lines_with_values():
    fig = scaling_figure(
        _report(lipschitz={"max": [1.0] * 5, "mean": [1.0] * 5, "explicit": {"max": 2.0, "mean": None}})
    )
    ax = fig.axes[1]
    (line,) = _reference_lines(ax, ["explicit max"])
    assert set(line.get_ydata()) == {2.0} and line.get_label() == "explicit max = 2"
    assert "explicit mean" not in {line.get_label().split(" = ")[0] for line in ax.get_lines()}


def test_zeros_next_to_decades_of_positives_give_a_zero_row_not_a_clipped_log_axis():
    lipschitz = {
        "max": [0.0, 1e-3, 1e-2, 1e-1, 1.0],
        "mean": [0.0] * 5,
        "explicit": {"max": 0.0, "mean": 0.0},
    }
    baselines = {"exact": {"value": 0.0, "seconds": 0.1}}
    fig = scaling_figure(
        _report(implicit=[0.5, 0.1, 0.01, 2e-3, 1e-3], baselines=baselines, lipschitz=lipschitz)
    )
    for ax, largest in zip(fig.axes, (0.5, 1.0), strict=True):
        smallest = 1e-3
        assert ax.get_yscale() == "symlog"
        assert math.isclose(ax.yaxis.get_transform().linthresh, smallest)
        low, high = ax.get_ylim()
        assert -smallest < low < 0 and high >= largest  # the zero row sits just above the bottom edge
        fig.canvas.draw()
        labels = {
            tick: text.get_text() for tick, text in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
        }
        assert labels[0.0] in ("0", "$\\mathdefault{0}$")


@pytest.mark.parametrize(
    ("values", "decades", "scale"),
    [
        ([1e-4, 1e-2, 1.0], 2.0, "log"),
        ([0.2, 0.5, 0.9], 2.0, "linear"),  # less than two decades: a linear axis reads better
        ([0.2, 0.5, 0.9], 0.0, "log"),
        ([0.0, 1e-4, 1.0], 2.0, "symlog"),
        ([0.0, 0.5, 0.9], 2.0, "linear"),  # zeros beside a narrow range: linear already shows them
        ([-1.0, 1e-4, 1.0], 2.0, "linear"),
        ([0.0, 0.0], 0.0, "linear"),
        ([None, float("nan"), 1e-4, 1.0], 2.0, "log"),  # gaps are ignored
        ([], 0.0, "linear"),
    ],
)
def test_value_scale_picks_the_y_scale(values, decades, scale):
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.set_yscale("log" if scale == "linear" else "linear")  # the scale is set, not left as it was
    assert value_scale(ax, values, decades=decades) == scale
    assert ax.get_yscale() == scale


@pytest.mark.parametrize(
    ("budgets", "named"), [([], "at least one"), ([0, 1], r"budgets\[0\]"), ([4, 2], "increasing")]
)
def test_budget_axis_refuses_bad_budgets_by_name(budgets, named):
    from matplotlib.figure import Figure

    from deq_core.errors import ConfigError

    with pytest.raises(ConfigError, match=named):
        budget_axis(Figure().subplots(), budgets)
