"""Tests of the sensitivity result's words: the table, the summary and the captions render one typed result."""

from __future__ import annotations

import math
import re

import pytest
from optuna.trial import TrialState, create_trial

from archsearch.dashboards import build_sensitivity_report
from archsearch.sensitivity import SensitivityResult
from archsearch.sensitivity._jobs import Centre, job_id
from archsearch.sensitivity._result import centre_findings, compare_centre, summarize
from archsearch.spaces import Hyperparameters, NetSpec, neighbourhood

HYPERPARAMETERS = Hyperparameters(lr=0.01, weight_decay=0.0, batch_size=64, optimizer="adam")
CENTRE = Centre(
    16,
    NetSpec(widths=(64,), dropouts=(0.0,), activation="relu"),
    HYPERPARAMETERS,
    tuple(neighbourhood(NetSpec(widths=(64,), dropouts=(0.0,), activation="relu"), 4, 3, steps=())),
)
REMOVE = "remove layer 0 (linear model with the centre's hyperparameters)"


def _result(
    shifts: dict[str, float], seeds: list[int], jitter: float, margin: float | None = None
) -> SensitivityResult:
    """A result whose neighbours are the centre moved by ``shifts[change]`` plus a per-seed jitter."""
    centre_values = {seed: 0.95 + 0.02 * math.sin(3 * seed) for seed in seeds}
    runs = {}
    for n in CENTRE.neighbours:
        for seed in seeds:
            value = (
                centre_values[seed]
                + shifts.get(n.change, 0.0)
                + (0 if n.kind == "centre" else jitter * math.cos(7 * seed + len(n.change)))
            )
            runs[job_id(CENTRE.trial, n.key, seed)] = create_trial(state=TrialState.COMPLETE, value=value)
    centre = compare_centre(CENTRE, seeds, runs, "maximize", 0.05, 4, 3, margin)
    result = SensitivityResult(
        study_name="teacher",
        companion_study="teacher.sensitivity",
        metric="accuracy",
        direction="maximize",
        alpha=0.05,
        margin=margin,
        seeds=seeds,
        steps=[],
        centres=[centre],
        runs_planned=5 * len(seeds),
        runs_trained=5 * len(seeds),
        runs_reused=0,
        runs_diverged=0,
        runs_missing=0,
        warnings=[],
        summary="",
    )
    result.summary = summarize(result)
    return result


def _texts(result: SensitivityResult) -> tuple[str, str, str, str]:
    """The summary, the forest plot's caption, the width curves' caption and the table of one result."""
    report = build_sensitivity_report(result.to_dict())
    forest, widths = report.figures
    return result.summary, forest.caption, widths.caption, result.table()


def test_too_few_seeds_reads_the_same_in_summary_caption_and_table() -> None:
    """Check that with 3 seeds no text claims a plateau, and an effect excluding 0 is inconclusive everywhere."""
    result = _result({REMOVE: -0.0232}, seeds=[0, 1, 2], jitter=0.006)
    (centre,) = result.centres
    assert not centre.can_reach_significance
    removal = next(n for n in centre.neighbours if n.change == REMOVE)
    # The interval excludes 0, yet with 3 seeds Holm cannot call it worse: inconclusive, with the seeds needed.
    assert removal.effect.ci_high < 0 and removal.effect.verdict == "inconclusive"
    assert removal.effect.label == f"inconclusive (n=3; about {removal.effect.seeds_needed} seeds would resolve it)"
    summary, forest, widths, table = _texts(result)
    findings = centre_findings(centre, "accuracy", "maximize")
    # One sentence, printed by the summary and repeated by the caption.
    assert findings in summary and findings in forest
    assert "Holm's correction over 4 changes lets no change be called better or worse" in findings
    for text in (summary, forest, widths, table):
        assert "plateau" not in text and "within noise" not in text.lower() and "No verdict" not in text
    # The table shows each neighbour's label, and the findings list each change under its verdict.
    for n in centre.neighbours:
        assert n.effect.label in table
        assert re.search(rf"{n.effect.verdict.capitalize()}[^.]*{re.escape(n.change)}", findings), (n.change, findings)
    frame = build_sensitivity_report(result.to_dict()).tables[0].frame
    assert frame["verdict"].tolist() == [n.effect.label for n in centre.neighbours]


def test_a_plateau_is_claimed_in_summary_and_caption_only_when_every_one_neuron_change_is_equivalent() -> None:
    """Check that with 8 seeds, tight +-1 neuron changes are equivalent and both texts say plateau, and worse agrees."""
    result = _result({REMOVE: -0.05}, seeds=list(range(8)), jitter=0.0005)
    (centre,) = result.centres
    verdicts = {n.change: n.effect.verdict for n in centre.neighbours}
    assert verdicts["layer 0: 64 -> 65 (+1)"] == verdicts["layer 0: 64 -> 63 (-1)"] == "equivalent"
    assert verdicts[REMOVE] == "worse"
    summary, forest, _, table = _texts(result)
    for text in (summary, forest):
        assert "it sits on a plateau of width" in text
        assert f"Worse: {REMOVE} (-0.0500, 95% CI -0.05" in text
    (row,) = [line for line in table.splitlines() if line.startswith(f"  {REMOVE}")]
    assert row.endswith("  8  worse")


def test_a_given_margin_is_named_as_given_in_every_text() -> None:
    """Check that a margin passed to the analysis is the one the summary, caption and table print."""
    result = _result({}, seeds=list(range(8)), jitter=0.0005, margin=0.002)
    (centre,) = result.centres
    assert (centre.margin, centre.margin_given) == (0.002, True)
    summary, forest, _, table = _texts(result)
    assert "Equivalent within ± 0.0020 (the given margin)" in summary
    assert "the given equivalence margin (0.0020)" in forest
    assert "equivalence margin ± 0.0020" in table


def test_numbers_follow_one_style() -> None:
    """Check that no text has a negative zero, scientific notation, or a count of one in the plural."""
    result = _result({REMOVE: -0.3}, seeds=list(range(8)), jitter=0.00001)
    summary, forest, widths, table = _texts(result)
    for text in (summary, forest, widths, table):
        assert (
            "-0.0000" not in text
            and not re.search(r"\de-\d", text)
            and not re.search(r"\b1 (seeds|trials|changes)\b", text)
        )
    assert "< 0.0001" in table or "0.0" in table


def test_a_centre_without_paired_runs_says_nothing_is_compared() -> None:
    """Check the findings when no neighbour finished a run with the centre's seeds."""
    centre = compare_centre(CENTRE, [0, 1], {}, "maximize", 0.05, 4, 3)
    assert centre_findings(centre, "accuracy", "maximize") == (
        "Around trial 16 (n=0 paired seeds per architecture): no neighbour finished a run with the centre's seeds, "
        "so nothing is compared."
    )


@pytest.mark.parametrize("margin", [-0.01, 0.0])
def test_compare_centre_rejects_a_margin_that_is_not_positive(margin: float) -> None:
    """Check that a negative or zero margin is refused with the rule and the value."""
    result = _result({}, seeds=[0, 1, 2], jitter=0.001)
    runs = {
        job_id(CENTRE.trial, n.key, seed): create_trial(state=TrialState.COMPLETE, value=0.9 + 0.01 * seed)
        for n in CENTRE.neighbours
        for seed in result.seeds
    }
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"The 'margin' parameter of compare_to_centre must be a finite float > 0 (the largest mean difference that counts as no change, in metric units). Got {margin!r} instead."
        ),
    ):
        compare_centre(CENTRE, result.seeds, runs, "maximize", 0.05, 4, 3, margin)
