"""The best trial against the knee and the linear baseline on validation and test (issue #23 item 1): one result,
and the same sentence wherever the comparison is printed."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archsearch.stats import ROLE_KNEE, ROLE_LINEAR, compare_best
from archsearch.storage import keys

from ..conftest import make_trial, new_study

DISAGREES = "Test disagrees with validation"


def diabetes_like(path: Path, *, knee: bool = False, test_agrees: bool = False) -> optuna.Study:
    """The issue's diabetes numbers: the best network (val rmse 48.29) loses to the linear model on test."""
    study = new_study(path, metric="rmse", name="diabetes")
    study.set_user_attr("preprocessing", {"task": "regression", "target_scale": 77.0})  # knee tolerance 0.385
    study.add_trial(make_trial(widths=[], value=53.36, test_value=56.66, metric="rmse", baseline="linear"))
    best_test = 55.0 if test_agrees else 59.69
    study.add_trial(make_trial(widths=[64, 64], value=48.29, test_value=best_test, metric="rmse"))
    study.add_trial(make_trial(widths=[32], value=50.9, test_value=60.1, metric="rmse"))
    if knee:
        study.add_trial(make_trial(widths=[8], value=48.5, test_value=57.2, metric="rmse"))
    return study


def test_compare_best_shows_validation_and_test_with_their_rows(tmp_path: Path) -> None:
    """Check the table's numbers and n, and that the sentence names the linear model, what to do and the trial count."""
    comparison = compare_best(diabetes_like(tmp_path / "s.db"))
    assert comparison is not None and comparison.best.number == 1
    assert [c.role for c in comparison.contenders] == ["best", ROLE_LINEAR]
    lines = comparison.lines()
    assert lines[0].split() == ["trial", "params", "val", "rmse", "test", "rmse"]
    assert "48.2900" in lines[1] and "59.6900" in lines[1] and "53.3600" in lines[2] and "56.6600" in lines[2]
    assert lines[3].split() == ["rows", "100", "rows", "100", "rows"]
    assert all(len(line) <= 80 for line in lines[:4])
    verdict = comparison.verdict()
    assert " ".join(lines[4:]) == verdict and verdict.startswith(DISAGREES) and verdict.count(". ") == 0
    assert max(len(line) for line in lines) <= 78
    assert all(line.count("`") % 2 == 0 for line in lines)  # no command is split over two lines
    assert "the linear baseline (trial 0, 56.6600) scores better on test rmse" in verdict
    assert (
        "the best of 3 trials" in verdict
        and "more rows, or `[data] folds = 5` (validating on every train + validation row)" in verdict
    )
    assert "`archsearch export --trial 0`" in verdict
    assert comparison.gap_words(comparison.get(ROLE_LINEAR)) == (
        "5.0700 better on validation (100 rows) and 3.0300 worse on test (100 rows)"
    )


def test_compare_best_prefers_the_knee_and_counts_fold_rows(tmp_path: Path) -> None:
    """Check that with the knee also better on test the advice points to the knee, and with folds the validation n
    is train + validation rows and the advice asks for more folds or rows."""
    study = diabetes_like(tmp_path / "s.db", knee=True)
    study.set_user_attr(keys.CONFIG, {"data": {"folds": 5}})
    comparison = compare_best(study)
    assert [c.role for c in comparison.contenders] == ["best", ROLE_KNEE, ROLE_LINEAR]
    assert comparison.val_rows() == "900 rows (5 folds)"
    verdict = comparison.verdict()
    assert "the knee (trial 3, 57.2000) and the linear baseline (trial 0, 56.6600) score better" in verdict
    assert "`archsearch export --trial 3`" in verdict and verdict.endswith(
        "trust the lead only once more rows confirm it."
    )


def test_compare_best_says_nothing_when_test_agrees(tmp_path: Path) -> None:
    """Check that no sentence is added when the best is also best on test, or when no trial finished."""
    comparison = compare_best(diabetes_like(tmp_path / "s.db", test_agrees=True))
    assert comparison.verdict() is None and len(comparison.lines()) == 4
    assert "better on validation (100 rows) and 1.6600 better on test" in comparison.gap_words(
        comparison.get(ROLE_LINEAR)
    )
    assert compare_best(new_study(tmp_path / "empty.db")) is None


@pytest.mark.parametrize("knee", [False, True])
def test_report_summary_table_and_note_carry_the_sentence(tmp_path: Path, knee: bool) -> None:
    """Check that the report's summary (the dashboard note's first part) and its first table show validation and
    test with their rows and the same sentence, and no longer call the best 'better' from validation alone."""
    import optuna_dashboard

    from archsearch.dashboards import build_report

    study = diabetes_like(tmp_path / "s.db", knee=knee)
    verdict = compare_best(study).verdict()
    report = build_report(study)
    assert f"- **{verdict}**" in report.summary
    assert "and 3.0300 worse on test (100 rows)" in report.summary
    assert "48.2900 on validation (100 rows) and 59.6900 on test (100 rows)" in report.summary
    table = report.tables[0]
    assert verdict in table.caption and "test rmse" in table.frame.columns
    assert table.frame["test rmse"].tolist()[0] == 59.69
    report.push_to_dashboard(study)
    assert verdict in optuna_dashboard.get_note(study)
    page = report.write_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<li><strong>Test disagrees with validation:" in page and "<code>archsearch export --trial" in page


def test_a_knee_that_is_the_linear_model_is_named_once(tmp_path: Path) -> None:
    """Check that when the knee is the linear baseline itself the sentence names that trial once, with both roles."""
    study = new_study(tmp_path / "s.db", metric="rmse", name="diabetes")
    study.set_user_attr(keys.PREPROCESSING, {"task": "regression", "target_scale": 77.0})
    study.add_trial(make_trial(widths=[], value=48.5, test_value=56.66, metric="rmse", baseline="linear"))
    study.add_trial(make_trial(widths=[64, 64], value=48.29, test_value=59.69, metric="rmse"))
    verdict = compare_best(study).verdict()
    assert "the knee and linear baseline (trial 0, 56.6600) scores better on test rmse" in verdict
