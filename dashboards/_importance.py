"""Hyperparameter importance: PED-ANOVA on the sampled parameters and on derived size features."""

from __future__ import annotations

import warnings

import optuna
import pandas as pd

from archsearch.stats import StudyData

# PED-ANOVA compares the best trials (a quantile, Optuna's default 10%) with all of them. A top set of
# one or two trials makes the scores noise, so the quantile grows until the top set holds MIN_TOP_TRIALS,
# and below MIN_TRIALS_FOR_IMPORTANCE (where that quantile would pass a quarter) no score is given.
MIN_TOP_TRIALS = 5
MIN_TRIALS_FOR_IMPORTANCE = 20


def top_quantile(n_finished: int) -> float:
    """The share of finished trials PED-ANOVA treats as "the best": 10%, or more so that 5 trials are in it."""
    return max(0.1, MIN_TOP_TRIALS / max(n_finished, 1))


def importance_table(study: optuna.Study, data: StudyData) -> pd.DataFrame:
    """PED-ANOVA importance of each sampled parameter and of the derived size features.

    The sampled parameters are scored on the study itself, which handles conditional parameters
    (``width_2`` exists only at depth 3 or more). The derived features (``depth`` when ``n_layers``
    is not sampled, ``total_units``, ``n_params``) are scored the same way on a temporary in-memory
    study built from the flattened table. PED-ANOVA scores each feature on its own, so both sets
    share one scale: every score is divided by the sum over the sampled parameters. Derived
    features restate the sampled ones and are left out of that sum.

    Args:
        study: The study.
        data: The same study, flattened.

    Returns:
        Columns ``feature, importance, derived``, most important first.

    Raises:
        ValueError: If fewer than :data:`MIN_TRIALS_FOR_IMPORTANCE` trials finished.
    """
    n_done = len(data.complete)
    if n_done < MIN_TRIALS_FOR_IMPORTANCE:
        raise ValueError(
            f"Importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials; this study has {n_done}."
        )
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=top_quantile(n_done))
    with warnings.catch_warnings():
        # Optuna warns when every trial lands in the top quantile; the scores are then all 0, which
        # the table shows as such.
        warnings.simplefilter("ignore")
        # A multi-objective study's importance is of its quality, the first objective.
        target = None if len(study.directions) == 1 else (lambda t: t.values[0])
        sampled = optuna.importance.get_param_importances(study, evaluator=evaluator, normalize=False, target=target)
        derived_study = _derived_feature_study(data, skip_depth="n_layers" in sampled)
        derived = (
            optuna.importance.get_param_importances(derived_study, evaluator=evaluator, normalize=False)
            if derived_study.get_trials(deepcopy=False)
            else {}
        )
    total = sum(sampled.values())
    scale = 1.0 / total if total > 0 else 0.0
    rows = [{"feature": k, "importance": v * scale, "derived": False} for k, v in sampled.items()]
    rows += [{"feature": k, "importance": v * scale, "derived": True} for k, v in derived.items()]
    table = pd.DataFrame(rows, columns=["feature", "importance", "derived"])
    return table.sort_values(["importance", "feature"], ascending=[False, True], ignore_index=True)


def _derived_feature_study(data: StudyData, *, skip_depth: bool) -> optuna.Study:
    done = data.sized
    direction = "maximize" if data.maximize else "minimize"
    study = optuna.create_study(direction=direction)
    features = {}
    if not skip_depth and done["depth"].nunique() > 1:
        features["depth"] = optuna.distributions.IntDistribution(int(done["depth"].min()), int(done["depth"].max()))
    # Size features span orders of magnitude, so they are scored on a log scale (+1 keeps the
    # linear model's 0 hidden units on it).
    for name in ("total_units", "n_params"):
        column = done[name] + 1.0
        if column.notna().all() and column.nunique() > 1:
            features[name] = optuna.distributions.FloatDistribution(column.min(), column.max(), log=True)
    if not features:
        return study
    for _, row in done.iterrows():
        params = {k: int(row[k]) if k == "depth" else float(row[k] + 1.0) for k in features}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=features, value=float(row["value"])))
    return study
