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
    n_inputs=4,
)
REMOVE = "remove layer 1 (linear model with the centre's hyperparameters)"


def _result(
    shifts: dict[str, float],
    seeds: list[int],
    jitter: float,
    margin: float | None = None,
    resolution: float = 0.0,
    spread: float = 0.02,
) -> SensitivityResult:
    """A result whose neighbours are the centre moved by ``shifts[change]`` plus a per-seed jitter; the centre
    itself varies by about ``spread`` from seed to seed."""
    centre_values = {seed: 0.95 + spread * math.sin(3 * seed) for seed in seeds}
    runs = {}
    for n in CENTRE.neighbours:
        for seed in seeds:
            value = (
                centre_values[seed]
                + shifts.get(n.change, 0.0)
                + (0 if n.kind == "centre" else jitter * math.cos(7 * seed + len(n.change)))
            )
            runs[job_id(CENTRE.trial, n.key, seed)] = create_trial(state=TrialState.COMPLETE, value=value)
    centre = compare_centre(CENTRE, seeds, runs, "maximize", 0.05, 3, margin, resolution=resolution)
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
    # Lower on every seed, yet 3 seeds cannot exclude anything at 95% (p >= 0.25): inconclusive, with its direction,
    # and no interval that excludes 0 beside a p-value that says nothing.
    assert removal.effect.p_value >= 0.25 and removal.effect.verdict == "inconclusive"
    assert removal.effect.ci_low == -math.inf and removal.effect.ci_high == math.inf
    assert removal.effect.label == "inconclusive (n=3; lower on 3 of 3 seeds)"
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
    assert verdicts["layer 1: 64 -> 65 (+1)"] == verdicts["layer 1: 64 -> 63 (-1)"] == "equivalent"
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
    assert "the equivalence margin, the given margin (0.0020)" in forest
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
    centre = compare_centre(CENTRE, [0, 1], {}, "maximize", 0.05, 3)
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
        compare_centre(CENTRE, result.seeds, runs, "maximize", 0.05, 3, margin)


def test_layers_are_numbered_from_one_next_to_the_input_in_every_text() -> None:
    """Check that changes name layer 1 as the one next to the input, as the report does, and no text says layer 0."""
    result = _result({REMOVE: -0.05}, seeds=list(range(8)), jitter=0.0005)
    changes = [n.change for n in result.centres[0].neighbours]
    assert changes[:2] == ["layer 1: 64 -> 65 (+1)", "layer 1: 64 -> 63 (-1)"]
    assert "add layer after 1 (copy of width 64)" in changes
    # The stored index stays 0-based: stored values keep their meaning.
    assert result.centres[0].neighbours[0].layer == 0
    summary, forest, widths, table = _texts(result)
    for text in (summary, forest, widths, table):
        assert not re.search(r"layer 0\b", text), text
    for text in (summary, forest, " ".join(table.split())):
        assert "layer 1 is next to the input" in text
    assert "layer 1 (centre 64)" in str(build_sensitivity_report(result.to_dict()).figures[1].figure.to_dict())


def test_the_advice_is_one_figure() -> None:
    """Check that the summary and the table advise one number of seeds, once, and no range of them."""
    shifts = {n.change: 0.004 * (i % 3) for i, n in enumerate(CENTRE.neighbours)}
    result = _result(shifts, seeds=[0, 1, 2], jitter=0.006)
    (centre,) = result.centres
    needed = sorted({n.effect.seeds_needed for n in centre.neighbours if n.effect.verdict == "inconclusive"})
    assert len(needed) > 1  # the neighbours alone would advise several figures
    summary, forest, _, table = _texts(result)
    for text in (summary, table):
        assert len(re.findall(r"--repeats (\d+)", text)) == 1, text
        assert re.findall(r"--repeats (\d+)", text) == [str(result.advised_repeats)]
        assert "seeds would resolve" not in text and not re.search(r"\d to \d[\d,]* seeds", text)
    assert result.to_dict()["advised_repeats"] == result.advised_repeats >= needed[0]


def test_the_table_prints_the_p_value_of_the_test_its_interval_comes_from() -> None:
    """Check that each row's interval excludes 0 exactly when the unadjusted p-value beside it is below 0.05, and
    that the table says which test and which p-value decides the verdict."""
    result = _result({REMOVE: -0.05, "layer 1: 64 -> 65 (+1)": 0.002}, seeds=list(range(8)), jitter=0.004)
    table = result.table()
    note = "95% CI and p: Wilcoxon signed-rank test of the paired differences, before Holm's correction"
    assert note in " ".join(table.split())  # wrapped to the terminal's width
    header = next(line for line in table.splitlines() if "95% CI" in line and "verdict" in line)
    assert re.search(r"95% CI\s+p\s+p \(Holm\)", header)
    for n in result.centres[0].neighbours:
        excludes = n.effect.ci_low > 0 or n.effect.ci_high < 0
        assert excludes == (n.effect.p_value < 0.05)
    frame = build_sensitivity_report(result.to_dict()).tables[0].frame
    assert {"p", "p (Holm)"} <= set(frame.columns)


def test_a_margin_raised_to_one_validation_row_says_so() -> None:
    """Check that a seed-to-seed sd below one validation row gives a margin of one row, named in every text."""
    result = _result({}, seeds=list(range(8)), jitter=0.0005, resolution=1 / 359, spread=0.001)
    (centre,) = result.centres
    assert centre.noise_floor < 1 / 359 and centre.margin == pytest.approx(1 / 359)
    summary, forest, _, table = _texts(result)
    assert "Equivalent within ± 0.0028 (one validation row of 359, more than the centre's seed-to-seed sd" in summary
    assert "equivalence margin ± 0.0028 (one validation row of 359)" in table
    assert "0.0028" in forest and "one validation row of 359" in forest
