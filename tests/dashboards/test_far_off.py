"""One trial at chance must not squash the report's figures (issue #23, item 4)."""

from __future__ import annotations

import optuna
import pytest

from archsearch.dashboards import build_report

CHANCE = 0.0975
# Figures with a metric axis (y) that must fit the bulk.
Y_FIGURES = [
    "metric_vs_depth",
    "metric_vs_params",
    "metric_vs_widths",
    "layer_shapes",
    "dropout_by_size",
    "best_so_far",
]


@pytest.fixture
def chance_study(study_factory, trial_maker) -> optuna.Study:
    """Fourteen trials at 0.94-0.986 over depths 1-3, two shapes per size, varied dropout, and one at chance."""
    study = study_factory()
    layouts = [
        ([16], 0.0),
        ([32], 0.1),
        ([64], 0.0),
        ([128], 0.2),
        ([32, 32], 0.0),
        ([64, 32], 0.1),
        ([32, 64], 0.0),
        ([64, 64], 0.2),
        ([128, 64], 0.0),
        ([64, 128], 0.1),
        ([32, 32, 32], 0.0),
        ([64, 32, 16], 0.1),
        ([16, 32, 64], 0.2),
        ([128, 128], 0.1),
    ]
    for i, (widths, dropout) in enumerate(layouts):
        study.add_trial(trial_maker(widths=widths, dropouts=[dropout] * len(widths), value=0.94 + 0.0033 * i))
    study.add_trial(trial_maker(widths=[64, 32], dropouts=[0.1, 0.1], value=CHANCE, lr=1e-4))
    return study


def test_every_metric_axis_fits_the_bulk_and_counts_the_chance_trial(chance_study) -> None:
    """Check that each figure's metric range excludes the chance trial, keeps every other, and says so."""
    figures = {f.key: f for f in build_report(chance_study).figures}
    for key in Y_FIGURES:
        entry = figures[key]
        assert entry.drawable, (key, entry.reason)
        low, high = entry.figure.layout.yaxis.range
        assert CHANCE < low and high - low < 0.1, (key, low, high)
        assert "1 trial below 0." in entry.caption and "(#14 at 0.0975) is drawn at the edge" in entry.caption, key
        # Every drawn point lies inside the axis: the chance trial is drawn at the edge, not off it.
        ys = [y for trace in entry.figure.data if trace.y is not None for y in trace.y if y is not None]
        assert low <= min(ys) and max(ys) <= high and CHANCE not in ys, key


def test_the_chance_trial_is_marked_apart(chance_study) -> None:
    """Check that scatter figures draw the far-off trial with a triangle and box figures add an edge marker."""
    figures = {f.key: f for f in build_report(chance_study).figures}
    params = figures["metric_vs_params"].figure
    marked = [s for trace in params.data if isinstance(trace.marker.symbol, tuple) for s in trace.marker.symbol]
    assert marked.count("triangle-down-open") == 1
    depth = figures["metric_vs_depth"].figure
    assert any(trace.name == "far off, drawn at the edge" for trace in depth.data)


def test_parallel_coordinates_colours_spread_over_the_bulk(chance_study) -> None:
    """Check that the colour scale and the metric axis start above the chance trial, which sits at their end."""
    entry = next(f for f in build_report(chance_study).figures if f.key == "parallel_coordinates")
    (parcoords,) = entry.figure.data
    assert CHANCE < parcoords.line.cmin < 0.94 and parcoords.line.cmax > 0.98
    metric = parcoords.dimensions[-1]
    assert CHANCE < metric.range[0] < 0.94 and min(metric.values) >= metric.range[0]
    assert "drawn at the end of the metric axis in the colour scale's worst colour" in entry.caption


def test_a_study_without_far_off_trials_says_nothing(study_factory, trial_maker) -> None:
    """Check that no caption mentions far-off trials when none is."""
    study = study_factory()
    for i, widths in enumerate([[8], [16], [32], [8, 8], [16, 8], [32, 8]]):
        study.add_trial(trial_maker(widths=widths, value=0.9 + 0.01 * i))
    assert not any("drawn at the edge" in f.caption for f in build_report(study).figures)


def _neighbour(change: str, mean: float, delta: int) -> dict:
    effect = {
        "mean": mean,
        "ci_low": mean - 0.004,
        "ci_high": mean + 0.004,
        "verdict": "inconclusive",
        "p_value": 0.5,
        "p_adjusted": 1.0,
        "n": 8,
        "label": "inconclusive (n=8)",
    }
    return {"change": change, "effect": effect, "delta_params": delta, "widths": [64, 32], "n_params": 3000 + delta}


def test_the_sensitivity_forest_plot_fits_the_bulk_of_the_changes() -> None:
    """Check that one change that wrecks the network (-0.5) does not squash the others' intervals to a line."""
    from archsearch.dashboards._sensitivity import forest_plot

    changes = [("-1 neuron", 0.001), ("+1 neuron", -0.002), ("-1 in 2", 0.003), ("+1 in 2", 0.0), ("add", -0.004)]
    neighbours = [_neighbour(c, m, d) for d, (c, m) in enumerate(changes)] + [_neighbour("remove 1", -0.5, -900)]
    centre = {"trial": 7, "neighbours": neighbours, "margin": 0.003, "margin_source": "seed sd", "findings": ""}
    entry = forest_plot({"metric": "accuracy", "direction": "maximize"}, centre)
    low, high = entry.figure.layout.xaxis.range
    assert -0.5 < low < -0.008 and 0.007 < high < 0.1
    assert "1 change below" in entry.caption and "(remove 1 at -0.5000) is drawn at the edge" in entry.caption
    xs = [x for trace in entry.figure.data for x in trace.x]
    assert min(xs) >= low and -0.5 not in xs
