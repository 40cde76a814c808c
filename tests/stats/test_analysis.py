"""The computations behind the figures, on hand-made studies whose answers are known."""

from __future__ import annotations

import math
import re

import optuna
import pytest

import archsearch.stats as an
from archsearch.dashboards._importance import importance_table
from archsearch.spaces import classify_shape
from archsearch.stats import MIN_GROUP_TRIALS, best_group

PRUNED = optuna.trial.TrialState.PRUNED


@pytest.mark.parametrize(
    ("widths", "shape"),
    [
        ([], "linear"),
        ([32], "single"),
        ([16, 16, 16], "uniform"),
        ([64, 32, 32], "funnel"),
        ([8, 16, 64], "expanding"),
        ([16, 64, 16], "diamond"),
        ([16, 64, 64, 8], "diamond"),
        ([64, 16, 64], "irregular"),
        ([64, 64, 16, 32], "irregular"),
    ],
)
def test_classify_shape_names_each_shape(widths: list[int], shape: str) -> None:
    """Check that width lists are classified as linear, single, uniform, funnel, expanding, diamond, irregular."""
    assert classify_shape(widths) == shape


def test_flatten_trials_rebuilds_sizes_of_pruned_trials_from_params(study_factory, trial_maker) -> None:
    """Check that a pruned trial without size user attributes gets depth and widths from its parameters."""
    study = study_factory()
    study.add_trial(trial_maker(widths=[32, 8], value=None, state=PRUNED, curve=[0.5, 0.6]))
    row = an.load_study_data(study).trials.iloc[0]
    assert (row["state"], row["depth"], row["widths"], row["layer_shape"]) == ("PRUNED", 2, (32, 8), "funnel")
    # Pruned trials have no metric and carry the epochs they ran.
    assert math.isnan(row["value"]) and row["epochs_run"] == 2


def test_assign_size_bins_splits_on_a_log_scale() -> None:
    """Check that parameter counts fall into log-equal bins labelled with their range."""
    labels = an.assign_size_bins([10, 20, 1000, 2000, 100_000])
    assert labels == ["small (10–20 params)"] * 2 + ["medium (1k–2k params)"] * 2 + ["large (100k params)"]


def test_assign_size_bins_uses_one_bin_for_one_size() -> None:
    """Check that identical parameter counts share a single bin."""
    assert an.assign_size_bins([59, 59, 59]) == ["all sizes (59 params)"] * 3


def _size_ladder(study_factory, trial_maker, metric: str, values: list[float]) -> optuna.Study:
    # Four sizes from linear (33 params) to 2 layers of 256 (69,379 params), one trial each.
    study = study_factory(metric)
    for widths, value in zip([[], [4], [64], [256, 256]], values):
        study.add_trial(trial_maker(widths=widths, value=value, metric=metric))
    return study


def test_pareto_front_keeps_trials_no_smaller_one_beats(study_factory, trial_maker) -> None:
    """Check that the Pareto front drops a larger trial that is worse than a smaller one."""
    study = _size_ladder(study_factory, trial_maker, "accuracy", [0.80, 0.90, 0.88, 0.95])
    assert an.pareto_front(an.load_study_data(study))["number"].tolist() == [0, 1, 3]


def test_pareto_front_follows_a_minimized_metric(study_factory, trial_maker) -> None:
    """Check that for rmse lower values make the front."""
    study = _size_ladder(study_factory, trial_maker, "rmse", [1.0, 0.5, 0.6, 0.3])
    assert an.pareto_front(an.load_study_data(study))["number"].tolist() == [0, 1, 3]


def test_find_knee_picks_the_smallest_trial_within_tolerance(study_factory, trial_maker) -> None:
    """Check that the knee is the fewest-parameter trial within 0.005 of the best accuracy."""
    study = _size_ladder(study_factory, trial_maker, "accuracy", [0.80, 0.90, 0.914, 0.918])
    knee = an.find_knee(an.load_study_data(study), 0.005)
    assert (knee.best, knee.knee) == (3, 2)
    assert knee.gap == pytest.approx(0.004)
    # A tighter tolerance leaves only the best.
    assert an.find_knee(an.load_study_data(study), 0.003).knee == 3


def test_find_knee_respects_a_minimized_metric(study_factory, trial_maker) -> None:
    """Check that for rmse the knee is within the tolerance above the lowest error."""
    study = _size_ladder(study_factory, trial_maker, "rmse", [0.9, 0.32, 0.304, 0.30])
    knee = an.find_knee(an.load_study_data(study), 0.005)
    assert (knee.best, knee.knee) == (3, 2)


def test_find_knee_rejects_a_negative_tolerance(study_factory, trial_maker) -> None:
    """Check that a negative tolerance is refused with the parameter's name."""
    study = _size_ladder(study_factory, trial_maker, "accuracy", [0.8, 0.9, 0.91, 0.92])
    with pytest.raises(ValueError, match="'knee_tolerance' parameter must be >= 0"):
        an.find_knee(an.load_study_data(study), -0.1)


def test_dropout_effect_separates_small_and_large_networks(study_factory, trial_maker) -> None:
    """Check that dropout is found to hurt the small bin and help the large one, from 3 trials a side."""
    study = study_factory()
    for widths, d, value in [([4], 0.0, 0.85), ([4], 0.3, 0.80), ([512, 512], 0.0, 0.90), ([512, 512], 0.3, 0.93)]:
        for k in range(3):
            study.add_trial(trial_maker(widths=widths, dropouts=[d] * len(widths), value=value + 0.001 * k))
    effects = an.dropout_effect(an.load_study_data(study), 0.005)
    assert effects["verdict"].tolist() == ["hurts", "helps"]
    assert effects["size_bin"].astype(str).str.startswith(("small", "large")).all()


def test_dropout_effect_without_dropout_zero_compares_around_the_median(study_factory, trial_maker) -> None:
    """Check that a space whose dropout never is 0 still gets an answer: above vs at-or-below the median."""
    study = study_factory()
    for d, value in [(0.1, 0.90), (0.1, 0.91), (0.2, 0.92), (0.4, 0.85), (0.5, 0.84), (0.5, 0.83)]:
        study.add_trial(trial_maker(widths=[16], dropouts=[d], value=value))
    (row,) = an.dropout_effect(an.load_study_data(study), 0.005).itertuples()
    # Median dropout 0.3: 0.1, 0.1, 0.2 (median 0.91) at or below it, 0.4, 0.5, 0.5 (median 0.84) above.
    assert (row.split, row.n_without, row.n_with, row.verdict) == (pytest.approx(0.3), 3, 3, "hurts")
    # Two trials above the median are too few to compare (issue #23: a claim from 3 against 2).
    study = study_factory()
    for d, value in [(0.1, 0.90), (0.1, 0.91), (0.2, 0.92), (0.4, 0.85), (0.5, 0.84)]:
        study.add_trial(trial_maker(widths=[16], dropouts=[d], value=value))
    (row,) = an.dropout_effect(an.load_study_data(study), 0.005).itertuples()
    assert (row.n_without, row.n_with, row.verdict) == (3, 2, "cannot tell")


def test_spread_by_size_pools_seed_groups(study_factory, trial_maker) -> None:
    """Check that the trial spread and the pooled seed-to-seed spread come out as computed by hand."""
    study = study_factory()
    for value, group in [(0.80, "a"), (0.82, "a"), (0.90, "b"), (0.94, "b")]:
        study.add_trial(trial_maker(widths=[16], value=value, seed_group=group))
    row = an.spread_by_size(an.load_study_data(study)).iloc[0]
    # Deviations from the mean 0.865: -0.065, -0.045, 0.035, 0.075 (sample std, n - 1 = 3).
    assert row["trial_std"] == pytest.approx(math.sqrt(0.0131 / 3))
    # Group variances 0.0002 and 0.0008, pooled: sqrt(0.0005).
    assert (row["n_groups"], row["seed_std"]) == (2, pytest.approx(math.sqrt(0.0005)))


def test_pruning_summary_counts_epochs_and_saved_time(study_factory, trial_maker) -> None:
    """Check that pruned trials are counted at their last epoch and saved time uses their own pace."""
    study = study_factory()
    study.add_trial(trial_maker(widths=[8], value=0.9, curve=[0.9] * 10, train_seconds=10))
    study.add_trial(trial_maker(widths=[8], value=None, state=PRUNED, curve=[0.5] * 3, train_seconds=3))
    study.add_trial(trial_maker(widths=[8], value=None, state=PRUNED, curve=[0.5] * 3, train_seconds=6))
    summary = an.pruning_summary(an.load_study_data(study))
    assert (summary.pruned_at, summary.full_epochs, summary.n_pruned) == ({3: 2}, 10, 2)
    # 7 epochs left each, at 1 s and 2 s per epoch.
    assert summary.saved_seconds == pytest.approx(21.0)


def test_width_correlations_count_narrower_as_better_when_minimizing(study_factory, trial_maker) -> None:
    """Check that, for rmse falling with width, the correlation reads +1 (wider is better)."""
    study = study_factory("rmse")
    for width, rmse in [(4, 1.0), (16, 0.8), (64, 0.5), (256, 0.4)]:
        study.add_trial(trial_maker(widths=[width], value=rmse, metric="rmse"))
    rhos = an.width_correlations(an.load_study_data(study))
    assert rhos == {"layer 1": pytest.approx(1.0), "total units": pytest.approx(1.0)}


def test_importance_table_flags_derived_size_features(study_factory, trial_maker) -> None:
    """Check that sampled parameters sum to 1 and total_units/n_params are listed as derived."""
    study = study_factory()
    for i in range(20):
        depth = i % 3 + 1
        study.add_trial(trial_maker(widths=[8 * (i + 1)] * depth, value=0.6 + 0.015 * i, lr=10 ** (-4 + i % 4)))
    table = importance_table(study, an.load_study_data(study))
    derived = table[table["derived"]]
    assert sorted(derived["feature"]) == ["n_params", "total_units"]
    # depth is not repeated as derived when n_layers is a sampled parameter.
    assert "n_layers" in set(table["feature"]) and "depth" not in set(table["feature"])
    assert table.loc[~table["derived"], "importance"].sum() == pytest.approx(1.0)


def test_importance_table_needs_twenty_finished_trials(study_factory, trial_maker) -> None:
    """Check that importance is refused, with the count, below twenty finished trials (a top set of 5 is a quarter)."""
    study = study_factory()
    for i in range(4):
        study.add_trial(trial_maker(widths=[8 * (i + 1)], value=0.8 + 0.01 * i))
    with pytest.raises(ValueError, match="at least 20 finished trials; this study has 4"):
        importance_table(study, an.load_study_data(study))


@pytest.mark.parametrize(("n_finished", "quantile"), [(20, 0.25), (30, 5 / 30), (50, 0.1), (400, 0.1)])
def test_importance_top_set_holds_at_least_five_trials(n_finished: int, quantile: float) -> None:
    """Check that PED-ANOVA's "best" share is 10%, raised so that it holds 5 trials."""
    from archsearch.dashboards._importance import top_quantile

    assert top_quantile(n_finished) == pytest.approx(quantile)
    assert top_quantile(n_finished) * n_finished >= 5 - 1e-9


@pytest.mark.parametrize(
    ("metric", "target_scale", "tolerance"),
    [
        ("accuracy", None, 0.005),
        ("log_loss", None, 0.005),
        ("r2", 77.0, 0.005),
        ("rmse", 77.0, 0.385),
        ("rmse", None, 0.005),
    ],
)
def test_knee_tolerance_for_rmse_follows_the_target_spread(
    metric: str, target_scale: float | None, tolerance: float
) -> None:
    """Check that the default tolerance is 0.005 in 0-1 metrics and 0.005 target standard deviations for rmse."""
    assert an.knee_tolerance_for(metric, target_scale) == pytest.approx(tolerance)


def test_best_group_needs_two_groups_with_enough_trials() -> None:
    """Check that a group below the minimum is listed but not compared, and one comparable group names no best."""
    groups = [("irregular", [0.9833], [0.9833]), ("funnel", [0.97, 0.96, 0.95], [0.97, 0.96, 0.95])]
    found = best_group(groups, "layer shape")
    assert (found.best, found.counts, found.min_trials) == (None, {"irregular": 1, "funnel": 3}, MIN_GROUP_TRIALS)
    assert (
        found.sentence()
        == "too few trials to compare layer shapes: 1 irregular, 3 funnel (at least 3 per layer shape needed)"
    )


def test_best_group_compares_medians_of_scores() -> None:
    """Check that the best median score wins, so with minimizing scores the lowest metric wins."""
    groups = [("1 layer", [1.0, 1.2, 1.4], [-1.0, -1.2, -1.4]), ("2 layers", [0.9, 1.3, 1.5], [-0.9, -1.3, -1.5])]
    found = best_group(groups, "depth")
    # Medians 1.2 and 1.3 of rmse: 1 layer is better although 2 layers holds the single best trial.
    assert found.best == "1 layer"
    assert found.sentence() == "best median by depth: 1 layer (1.2000, n=3; then 2 layers 1.3000, n=3)"


@pytest.mark.parametrize("min_trials", [0, 2.5, True])
def test_best_group_rejects_an_invalid_minimum(min_trials: object) -> None:
    """Check that the minimum number of trials must be an int >= 1."""
    with pytest.raises(
        ValueError,
        match=re.escape(f"The 'min_trials' parameter of best_group must be an int >= 1. Got {min_trials!r} instead."),
    ):
        best_group([], "depth", min_trials=min_trials)


def test_compare_shapes_names_no_best_shape_from_a_single_trial(study_factory, trial_maker) -> None:
    """Check that a shape seen once in a size bin is listed with its count, not called best."""
    study = study_factory()
    # 135 parameters each, so all four share one size bin.
    for widths, accuracy in [([7, 5], 0.95), ([7, 5], 0.96), ([7, 5], 0.955), ([4, 8, 4], 0.9833)]:
        study.add_trial(trial_maker(widths=widths, value=accuracy))
    (found,) = an.compare_shapes(an.load_study_data(study)).values()
    assert found.best is None and found.counts == {"funnel": 3, "irregular": 1}
    assert (
        found.sentence()
        == "too few trials to compare layer shapes: 3 funnel, 1 irregular (at least 3 per layer shape needed)"
    )
