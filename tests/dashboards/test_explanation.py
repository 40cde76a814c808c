"""Tests for the report's explanation figures, read from the result `archsearch explain` stores in the study."""

from __future__ import annotations

import optuna

from archsearch.dashboards import build_report
from archsearch.dashboards._explanation import explanation_figures
from archsearch.storage import keys, set_study_user_attrs

COLUMNS = {"a": 0.8, "b": 0.1, "colour": 0.5}
STORED = {
    "model": {"folder": None, "study": "demo", "trial": 3, "kind": "ensemble", "metric": "accuracy"},
    "rows": {"split": "test", "n": 60},
    "attributions": {
        "n_rows": 60,
        "integrated_gradients": {
            "baseline": "all zeros",
            "steps": 32,
            "output": "the log-probability of each class",
            "importance": COLUMNS,
            "importance_rule": "mean |attribution| over the rows",
            "per_class": {"no": {"a": -0.4, "b": 0.0, "colour": -0.2}, "yes": {"a": 0.4, "b": 0.0, "colour": 0.2}},
        },
        "permutation": {
            "metric": "accuracy",
            "value": 0.95,
            "repeats": 5,
            "drop": {"a": 0.3, "b": 0.0, "colour": 0.2},
            "drop_sd": {"a": 0.02, "b": 0.0, "colour": 0.01},
        },
        "ig_vs_permutation": {"mean_spearman": 1.0, "min_spearman": 1.0, "n_pairs": 1},
        "members": {"n": 3, "integrated_gradients": {"mean_spearman": 0.9, "min_spearman": 0.8, "n_pairs": 3}},
    },
}


def test_report_shows_the_stored_explanation_with_its_n(demo_study: optuna.Study) -> None:
    assert explanation_figures(demo_study) == []  # nothing stored, nothing drawn (and no reason line either)
    set_study_user_attrs(demo_study, {keys.EXPLANATION: STORED})
    figures = {f.key: f for f in build_report(demo_study).figures}
    importance, per_class = figures["explain_importance"], figures["explain_per_class"]
    assert importance.drawable and per_class.drawable
    assert "n = 60 held-out test rows" in importance.caption and "n = 3 members" in importance.caption
    assert "Spearman 1.00 over n = 3 columns" in importance.caption
    assert list(importance.figure.data[0].y) == ["a", "colour", "b"]  # the most important first
    assert "n = 60 held-out test rows" in per_class.caption


def test_regression_explanation_has_no_per_class_figure(demo_study: optuna.Study) -> None:
    regression = {**STORED, "attributions": {**STORED["attributions"]}}
    regression["attributions"]["integrated_gradients"] = {
        k: v for k, v in STORED["attributions"]["integrated_gradients"].items() if k != "per_class"
    }
    set_study_user_attrs(demo_study, {keys.EXPLANATION: regression})
    assert [f.key for f in explanation_figures(demo_study)] == ["explain_importance"]
