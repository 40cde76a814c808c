"""Tests of the report's epoch budget line."""

from __future__ import annotations

from pathlib import Path

from archsearch.dashboards import build_report

from ..conftest import make_trial, new_study


def test_report_summary_says_to_raise_epochs_when_the_best_trials_were_still_improving(tmp_path: Path) -> None:
    """Check the summary line when the best trials peaked at the last of 5 epochs, and its absence otherwise."""
    study = new_study(tmp_path / "s.db")
    study.set_user_attr("archsearch_config", {"train": {"epochs": 5}})
    rising = [0.70, 0.75, 0.80, 0.85, 0.90]
    for widths, top in (([32], 0.90), ([64], 0.91), ([16], 0.80)):
        study.add_trial(make_trial(widths=widths, value=top, curve=[v - 0.9 + top for v in rising]))
    summary = build_report(study).summary
    assert (
        "- 3 of the 3 best trials were still improving at the last epoch (5): raise `epochs`." in summary.splitlines()
    )
    study.set_user_attr("archsearch_config", {"train": {"epochs": 10}})
    assert "raise `epochs`" not in build_report(study).summary
