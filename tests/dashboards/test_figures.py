"""Tests of the figures' look (spread, importance scales, curve colours, log ticks, ties) and the overview views."""

from __future__ import annotations

import archsearch.stats as an
from archsearch.dashboards import _overview_figures as overview_figs
from archsearch.dashboards import _size_figures as size_figs
from archsearch.dashboards import _training_figures as training_figs
from archsearch.dashboards import build_report
from archsearch.dashboards._base import log_axis


def test_spread_vs_size_shows_iqr_and_n_and_says_why_no_seed_spread(study_factory, trial_maker) -> None:
    """Check that figure 6 bars the IQR with n per bin and, without repeats, names what would measure seeds."""
    study = study_factory()
    for i, value in enumerate([0.80, 0.82, 0.84, 0.86, 0.99]):
        study.add_trial(trial_maker(widths=[16], value=value, seed=i))
    entry = training_figs.spread_vs_size(an.load_study_data(study))
    # The title promises no seed-to-seed spread that the caption says this study cannot measure.
    assert entry.title == "Trial-to-trial spread by size"
    (bar,) = entry.figure.data
    # One outlier (0.99) moves the sd a lot but the IQR only from 0.82 to 0.86.
    assert list(bar.text) == ["n=5"] and abs(bar.y[0] - 0.04) < 1e-9
    assert "IQR 0.0400 (5 trials)" in entry.caption
    assert "seed_group" not in entry.caption and "archsearch sensitivity --repeats R" in entry.caption


def test_importance_puts_derived_features_on_their_own_scale(demo_study) -> None:
    """Check that sampled and derived importances sit in two panels that each sum to 1."""
    entry = training_figs.importance(demo_study, an.load_study_data(demo_study))
    sampled, derived = entry.figure.data
    assert abs(sum(sampled.x) - 1) < 1e-9 and abs(sum(derived.x) - 1) < 1e-9
    assert set(derived.y) <= {"depth", "total_units", "n_params"}


def test_learning_curves_give_each_top_trial_its_own_colour_and_zoom_on_them(demo_study) -> None:
    """Check that the top curves have distinct colours and the y-range spans them, not the first epochs."""
    entry = training_figs.learning_curves(an.load_study_data(demo_study))
    top = [trace for trace in entry.figure.data if trace.name.startswith("#")]
    assert len({trace.line.color for trace in top}) == len(top) == training_figs.N_TOP_CURVES
    low, high = entry.figure.layout.yaxis.range
    later = [v for trace in top for v in trace.y[1:]]
    assert low < min(later) and high > max(later) and high - low < 1.3 * (max(later) - min(later))


def test_log_axis_ticks_read_as_counts() -> None:
    """Check that a log axis gets 1-2-5 ticks over a short range, powers of ten over a wide one, with separators."""
    axis = log_axis([520, 3400], "params")
    assert axis["tickvals"] == [500, 1000, 2000, 5000]
    assert axis["ticktext"] == ["500", "1,000", "2,000", "5,000"]
    assert log_axis([3, 40_000])["ticktext"] == ["10", "100", "1,000", "10,000"]
    assert log_axis([], "params") == {"type": "log", "title": "params"}


def test_metric_vs_params_says_ties_the_best_for_a_zero_gap(study_factory, trial_maker) -> None:
    """Check that a knee whose gap rounds to 0 is said to tie the best, never "only 0 short"."""
    study = study_factory()
    for widths, value in [([64, 64], 0.98891), ([8], 0.98890), ([4], 0.90)]:
        study.add_trial(trial_maker(widths=widths, value=value))
    entry = size_figs.metric_vs_params(an.load_study_data(study), 0.005)
    assert "ties the best" in entry.caption and "short of" not in entry.caption


def test_best_so_far_steps_with_the_running_best(study_factory, trial_maker) -> None:
    """Check that the best-so-far line is the running maximum and the caption names its last gain."""
    study = study_factory()
    for widths, value in [([8], 0.80), ([16], 0.85), ([4], 0.82), ([32], 0.84)]:
        study.add_trial(trial_maker(widths=widths, value=value))
    entry = overview_figs.best_so_far(an.load_study_data(study))
    line = next(trace for trace in entry.figure.data if trace.name == "best so far")
    assert list(line.y) == [0.80, 0.85, 0.85, 0.85]
    assert "last improved at trial #1, 2 trials before the last finished one" in entry.caption


def test_parallel_coordinates_cover_architecture_size_and_training(demo_study) -> None:
    """Check that the axes are depth, every layer's width and dropout, parameter count, the training params, metric."""
    entry = overview_figs.parallel_coordinates(demo_study, an.load_study_data(demo_study))
    labels = [d.label for d in entry.figure.data[0].dimensions]
    assert labels[:7] == [
        "hidden layers",
        "width 1 (0: none)",
        "width 2 (0: none)",
        "width 3 (0: none)",
        "dropout 1",
        "dropout 2",
        "dropout 3",
    ]
    assert "log10 params" in labels and "log10 lr" in labels and labels[-1] == "accuracy"
    optimizer = next(d for d in entry.figure.data[0].dimensions if d.label == "optimizer")
    assert list(optimizer.ticktext) == ["adam", "sgd"]


def test_all_trials_table_is_sortable_in_the_html(demo_study, tmp_path) -> None:
    """Check that the HTML report lists every trial in a sortable table in the report's number style."""
    report = build_report(demo_study)
    table = next(t for t in report.tables if t.key == "all_trials")
    assert len(table.frame) == len(demo_study.trials)
    page = report.write_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<table class="sortable">' in page and "<td>9,371</td>" in page and "table.sortable th" in page
