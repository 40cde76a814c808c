"""No caption or summary compares groups of fewer than MIN_GROUP_TRIALS trials, and no figure title promises what
its caption says the study cannot measure (issue #23, item 5)."""

from __future__ import annotations

import re

import optuna
import pytest

from archsearch.dashboards import build_report
from archsearch.stats import MIN_GROUP_TRIALS

# Every sentence of the report that compares groups, with the group sizes it rests on.
_DROPOUT = re.compile(
    r"(?:helps|hurts|no clear effect) \((?:no trial without dropout; )?median [\d.]+ of ([\d,]+) trials?"
)
_DROPOUT_OTHER = re.compile(r"(?:helps|hurts|no clear effect) \(.*? vs [\d.]+ of ([\d,]+) (?:without|at or below it)\)")
_BEST_MEDIAN = re.compile(r"best median by [a-z ]+: .*?\((.*?)(?:; not compared, under \d+ trials: .*?)?\)")
_IQR = re.compile(r"IQR [\d.]+ \(([\d,]+) trials?\)")
_VERDICT_WORDS = ("helps (", "hurts (", "no clear effect (", "best median by", "The widest is")


def stated_counts(text: str) -> list[int]:
    """The group sizes behind every comparison stated in ``text``."""
    counts = [int(n.replace(",", "")) for pattern in (_DROPOUT, _DROPOUT_OTHER) for n in pattern.findall(text)]
    for inside in _BEST_MEDIAN.findall(text):
        counts += [int(n.replace(",", "")) for n in re.findall(r"n=([\d,]+)", inside)]
    counts += [int(n.replace(",", "")) for n in _IQR.findall(text)]
    return counts


def _texts(study: optuna.Study) -> tuple[str, list]:
    report = build_report(study)
    return report.summary + "\n" + "\n".join(f.caption for f in report.figures), report.figures


def _assert_no_promise_the_caption_denies(figures) -> None:
    for entry in figures:
        for thing in re.findall(r"cannot measure the ([\w-]+)", entry.caption):
            assert thing.lower() not in entry.title.lower(), (entry.title, entry.caption)


@pytest.fixture
def tiny_study(study_factory, trial_maker) -> optuna.Study:
    """Eight trials: the issue's bin with 3 trials with dropout against 2 without, depths and bins of 1 or 2."""
    study = study_factory()
    study.add_trial(trial_maker(widths=[], value=0.90))
    for dropout, value in [(0.0, 0.9805), (0.0, 0.975), (0.2, 0.9694), (0.2, 0.97), (0.2, 0.96)]:
        study.add_trial(trial_maker(widths=[16], dropouts=[dropout], value=value))
    for value in (0.95, 0.955):
        study.add_trial(trial_maker(widths=[64, 64], dropouts=[0.1, 0.1], value=value))
    return study


def test_a_tiny_study_states_no_comparison(tiny_study) -> None:
    """Check that 3 against 2 trials gives "cannot tell" with both counts, and no depth, bin or dropout claim."""
    text, figures = _texts(tiny_study)
    assert [w for w in _VERDICT_WORDS if w in text] == []
    assert "cannot tell (too few trials to compare (3 with dropout, 2 without; at least 3 each))" in text
    assert "too few trials to compare depths" in text
    spread = next(f for f in figures if f.key == "spread_vs_size")
    # One bin holds 5 trials; the two bins of 1 and 2 trials are not measured (no IQR of 2 trials).
    assert "IQR" in spread.caption and "(2 trials)" not in spread.caption
    assert "Not measured, with fewer than 3 trials: small (33 params), 1 trial; large (5.1k params), 2 trials." in (
        spread.caption
    )
    assert all(n >= MIN_GROUP_TRIALS for n in stated_counts(text))
    _assert_no_promise_the_caption_denies(figures)


def test_groups_of_three_are_compared(study_factory, trial_maker) -> None:
    """Check that at exactly the minimum the comparisons are stated, each from groups of 3 or more."""
    study = study_factory()
    for widths, dropout, value in [
        ([16], 0.0, 0.95),
        ([16], 0.0, 0.951),
        ([16], 0.0, 0.952),
        ([16], 0.2, 0.93),
        ([16], 0.2, 0.931),
        ([16], 0.2, 0.932),
        ([64, 64], 0.0, 0.97),
        ([64, 64], 0.0, 0.971),
        ([64, 64], 0.0, 0.972),
    ]:
        study.add_trial(trial_maker(widths=widths, dropouts=[dropout] * len(widths), value=value))
    text, figures = _texts(study)
    assert "hurts (median 0.9310 of 3 trials with vs 0.9510 of 3 without)" in text
    assert "best median by depth: 2 layers" in text
    counts = stated_counts(text)
    assert counts and all(n >= MIN_GROUP_TRIALS for n in counts)
    _assert_no_promise_the_caption_denies(figures)


def test_the_demo_report_states_comparisons_from_enough_trials_only(demo_study) -> None:
    """Check that in the 45-trial demo every stated comparison rests on groups of 3 or more, and figure 6's
    title names the seed-to-seed spread only because the demo repeats two settings."""
    text, figures = _texts(demo_study)
    counts = stated_counts(text)
    assert counts and all(n >= MIN_GROUP_TRIALS for n in counts), counts
    spread = next(f for f in figures if f.key == "spread_vs_size")
    assert spread.title.startswith("Seed-to-seed") and "Orange bars" in spread.caption
    _assert_no_promise_the_caption_denies(figures)
