"""The report on whole studies: every figure drawn on a rich study, reasons on the edge ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import optuna_dashboard
import pytest

from archsearch.dashboards import (
    build_report,
    notable_trials,
    plot_layer_shapes,
    plot_metric_vs_depth,
    plot_metric_vs_params,
)

FAIL, PRUNED = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED
FIGURE_KEYS = [
    "metric_vs_depth",
    "metric_vs_params",
    "metric_vs_widths",
    "layer_shapes",
    "dropout_by_size",
    "spread_vs_size",
    "importance",
    "learning_curves",
    "pruning",
    "best_so_far",
    "parallel_coordinates",
]


def test_build_report_draws_every_figure_of_a_rich_study(demo_study: optuna.Study) -> None:
    """Check that the ~45-trial demo study draws all figures and names the knee and its tolerance."""
    report = build_report(demo_study)
    assert [f.key for f in report.figures] == FIGURE_KEYS
    assert [f.key for f in report.figures if not f.drawable] == []
    assert "Knee, the smallest network within 0.005 accuracy (0.5 points) of the best: trial #" in report.summary
    # Captions carry this study's numbers, not boilerplate.
    assert "Depths compared: best median by depth:" in report.figures[0].caption
    assert (
        "IQR" in report.figures[5].caption
        and "Orange bars are the standard deviation between seeds" in report.figures[5].caption
    )


def test_build_report_gives_reasons_for_an_empty_study(study_factory) -> None:
    """Check that a study with no trials renders every figure as a reason."""
    report = build_report(study_factory())
    assert all(f.figure is None and f.reason for f in report.figures)
    assert report.figures[0].reason == "The study has no trials yet."
    assert report.tables[0].frame.empty


def test_build_report_gives_reasons_when_every_trial_failed(study_factory, trial_maker, tmp_path: Path) -> None:
    """Check that a study of failures says so, names the failure, and still writes HTML."""
    study = study_factory()
    for _ in range(3):
        study.add_trial(trial_maker(widths=[8], value=None, state=FAIL, curve=[]))
    report = build_report(study)
    assert not any(f.drawable for f in report.figures)
    assert "No trial finished with a metric (3 fail)" in report.figures[0].reason
    assert "RuntimeError: CUDA out of memory" in report.summary
    assert "No trial finished with a metric" in report.write_html(tmp_path / "r.html").read_text()


def test_build_report_with_a_single_depth_explains_the_missing_comparisons(study_factory, trial_maker) -> None:
    """Check that a one-depth study skips the depth and shape figures with reasons and draws the rest."""
    study = study_factory()
    for i, width in enumerate([4, 8, 16, 32]):
        study.add_trial(trial_maker(widths=[width], dropouts=[0.1 * (i % 2)], value=0.8 + 0.02 * i))
    figures = {f.key: f for f in build_report(study).figures}
    assert figures["metric_vs_depth"].reason == "Every finished trial has 1 layer, so there is no depth to compare."
    assert "2 or more hidden layers" in figures["layer_shapes"].reason
    assert "at least 20 finished trials" in figures["importance"].reason
    assert figures["pruning"].reason.startswith("No trial was pruned")
    assert figures["metric_vs_params"].drawable and figures["dropout_by_size"].drawable
    with pytest.raises(ValueError, match="no depth to compare"):
        plot_metric_vs_depth(study)
    with pytest.raises(ValueError, match="2 or more hidden layers"):
        plot_layer_shapes(study)


def test_build_report_follows_a_minimized_regression_metric(study_factory, trial_maker) -> None:
    """Check that for rmse the best, knee and baseline gain are read with lower as better."""
    study = study_factory("rmse")
    for widths, rmse in [([], 2.0), ([4], 1.2), ([64], 1.003), ([256, 256], 1.0)]:
        study.add_trial(trial_maker(widths=widths, value=rmse, metric="rmse"))
    report = build_report(study)
    assert "validation rmse (regression); lower is better" in report.summary
    assert "Best: trial #3" in report.summary and "within 0.005 rmse (in the metric's own units)" in report.summary
    assert "the best network is +1 better" not in report.summary and (
        "is 1.0000 better on validation (100 rows) and 1.0000 better on test (100 rows)." in report.summary
    )
    table = notable_trials(study)
    assert table["trial"].tolist() == [3, 2, 0]
    # The plotted front goes down in error as size grows.
    front = [t for t in plot_metric_vs_params(study).data if t.name == "Pareto front"][0]
    assert list(front.y) == [2.0, 1.2, 1.003, 1.0]


def test_build_report_summary_names_no_best_depth_from_one_or_two_trials(study_factory, trial_maker) -> None:
    """Check that in a 5-trial study with 1 to 2 trials per depth the summary compares no depths and says why."""
    study = study_factory()
    for widths, accuracy in [([], 0.93), ([16], 0.95), ([32], 0.96), ([32, 16], 0.97), ([64, 32, 16], 0.99)]:
        study.add_trial(trial_maker(widths=widths, value=accuracy))
    summary = build_report(study).summary
    assert (
        "- Depth: too few trials to compare depths: 1 0 (linear), 2 1 layer, 1 2 layers, 1 3 layers "
        "(at least 3 per depth needed)."
    ) in summary
    assert "Best depth" not in summary and "best median" not in summary
    # Figure 1's caption prints the same sentence as the summary, and claims no best depth either.
    caption = build_report(study).figures[0].caption
    assert "Depths compared: too few trials to compare depths: 1 0 (linear), 2 1 layer," in caption
    assert "The best depth" not in caption and "Depth buys" not in caption
    # The search's linear model is named for what it is, with its n.
    assert (
        "- Tuned linear baseline (best 0-layer trial): trial #0 of 1 0-layer trial, 0.9300 (test 0.9200); the best "
        "network is 0.0600 better on validation (100 rows) and 0.0600 better on test (100 rows)." in summary
    )
    assert notable_trials(study)["role"].tolist()[-1] == "tuned linear baseline (best 0-layer trial)"


def test_build_report_summary_compares_depths_with_three_trials_each(study_factory, trial_maker) -> None:
    """Check that depths with 3 trials or more are compared by median, with each n, and smaller ones are named apart."""
    study = study_factory()
    for widths, accuracy in [
        ([8], 0.90),
        ([16], 0.91),
        ([32], 0.99),
        ([8, 8], 0.93),
        ([16, 8], 0.94),
        ([32, 8], 0.95),
        ([8, 8, 8], 0.98),
    ]:
        study.add_trial(trial_maker(widths=widths, value=accuracy))
    summary = build_report(study).summary
    # 1 layer holds the best trial (0.99) but 2 layers the best median (0.94 against 0.91).
    assert (
        "- Depth: best median by depth: 2 layers (0.9400, n=3; then 1 layer 0.9100, n=3; not compared, under 3 "
        "trials: 3 layers, n=1)."
    ) in summary
    assert "the best of 7 finished trials" in summary
    assert "Depths compared: best median by depth: 2 layers (0.9400, n=3;" in build_report(study).figures[0].caption


def test_build_report_rejects_a_negative_tolerance(study_factory) -> None:
    """Check that a negative knee tolerance is refused with the parameter's name."""
    with pytest.raises(ValueError, match="'knee_tolerance' parameter must be a finite number >= 0"):
        build_report(study_factory(), knee_tolerance=-1)


def test_report_write_html_embeds_plotly_and_loads_nothing_remote(demo_study: optuna.Study, tmp_path: Path) -> None:
    """Check that report.html inlines plotly.js once and references no remote script."""
    text = build_report(demo_study).write_html(tmp_path / "report.html").read_text()
    assert text.count('<script type="text/javascript">/**\n* plotly.js') == 1
    assert "<script src=" not in text and 'src="http' not in text
    assert text.count('class="plotly-graph-div"') == len(FIGURE_KEYS)


def test_report_push_to_dashboard_saves_figures_and_note(demo_study: optuna.Study) -> None:
    """Check that pushing stores one graph object per drawn figure and the summary as the study note."""
    report = build_report(demo_study)
    ids = report.push_to_dashboard(demo_study)
    assert ids == [f"archsearch_{n:02d}_{k}" for n, k in enumerate(FIGURE_KEYS, start=1)]
    # Pushing twice replaces, because the graph object ids are fixed.
    report.push_to_dashboard(demo_study)
    attrs = demo_study._storage.get_study_system_attrs(demo_study._study_id)
    stored = {
        k.removeprefix("dashboard:plot_data:").split(":")[0] for k in attrs if k.startswith("dashboard:plot_data:")
    }
    assert stored == set(ids)
    note = optuna_dashboard.get_note(demo_study)
    assert note.startswith("## archsearch report: demo-mlp") and "### 2. Metric vs parameter count" in note
    # The note says where the figures are and carries the best/knee/linear table in the report's number style.
    assert "## Where the archsearch figures are" in note and "| role | trial | depth |" in note
    assert "| best | 19 | 3 | 8, 64, 128 |" in note and "| 9,371 | 0.9189 |" in note


def test_import_does_not_load_plotly() -> None:
    """Check that importing archsearch.dashboards leaves plotly and scipy unloaded."""
    code = "import sys, archsearch.dashboards; print('plotly' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_notable_trials_default_knee_tolerance_scales_with_an_rmse_target(study_factory, trial_maker) -> None:
    """Check that for RMSE around 55 the default knee accepts a trial 0.3 worse when the target's std is 77."""
    study = study_factory("rmse")
    study.set_user_attr("preprocessing", {"task": "regression", "target_scale": 77.0})
    for widths, value in zip([[64, 64], [8]], [55.0, 55.3]):
        study.add_trial(trial_maker(widths=widths, value=value, metric="rmse"))
    roles = notable_trials(study)["role"].tolist()
    assert any(role.startswith("knee (within 0.385") for role in roles), roles
