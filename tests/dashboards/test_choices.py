"""Tests of the report's lines on searched blocks and heads (issue #24)."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution

from archsearch.dashboards._choices import choice_lines, depth_lines
from archsearch.storage import keys, set_study_user_attrs


def _study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(keys.METRIC, "accuracy")
    blocks = CategoricalDistribution(["a", "b", "a+b"])
    for value, chosen in ((0.90, "a"), (0.95, "a+b"), (0.93, "a+b"), (0.80, "b")):
        study.add_trial(
            optuna.trial.create_trial(
                value=value,
                params={"blocks": chosen},
                distributions={"blocks": blocks},
                user_attrs={keys.BLOCKS: chosen.split("+")},
            )
        )
    return study


def test_the_blocks_line_ranks_each_choice_with_its_n():
    """Check the verdict names the best choice, its margin over the next, and every choice's n."""
    assert choice_lines(_study()) == [
        "- Blocks (one feature block or several): best validation accuracy per choice a+b 0.9500 (n = 2), "
        "a 0.9000 (n = 1), b 0.8000 (n = 1); verdict: a+b, 0.0500 ahead of a "
        "(best of each choice's trials, not paired seeds)."
    ]


def test_no_line_without_a_searched_choice():
    """Check that a study that searched neither blocks nor heads gets no line."""
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.9, params={}, distributions={}))
    assert choice_lines(study) == []


def _depth_study(depths, storage=None) -> optuna.Study:
    study = optuna.create_study(direction="maximize", storage=storage, study_name="s")
    for value, depth in zip((0.9, 0.8, 0.85), depths):
        study.add_trial(
            optuna.trial.create_trial(value=value, params={}, distributions={}, user_attrs={keys.DEPTH: depth})
        )
    return study


def test_without_a_sensitivity_analysis_the_depth_line_says_it_is_best_of_n_and_how_to_pair():
    """Check the fallback names the command, and that a study of one kind of trial gets no line."""
    (line,) = depth_lines(_depth_study((2, 0, 1)))
    assert "not paired seeds; `archsearch sensitivity --study s` retrains the best trial and its linear" in line
    assert depth_lines(_depth_study((2, 1, 1))) == []


def test_the_depth_line_quotes_the_sensitivity_verdict_with_its_n():
    """Check the paired verdict of the stored analysis's linear neighbour, its interval and its n."""
    storage = optuna.storages.InMemoryStorage()
    study = _depth_study((2, 0, 1), storage)
    companion = optuna.create_study(storage=storage, study_name="s" + keys.COMPANION_SUFFIX, direction="maximize")
    effect = {"label": "worse", "mean": -0.04, "ci_low": -0.06, "ci_high": -0.02, "n": 8}
    neighbours = [
        {
            "kind": "width",
            "widths": [33],
            "change": "layer 1: 32 -> 33 (+1)",
            "effect": {**effect, "label": "equivalent"},
        },
        {"kind": "linear", "widths": [], "change": "linear model", "effect": effect},
    ]
    result = {"metric": "accuracy", "centres": [{"trial": 0, "widths": [32], "neighbours": neighbours}]}
    set_study_user_attrs(companion, {keys.SENSITIVITY_RESULT: result})
    assert depth_lines(study) == [
        "- Linear model or hidden layers, paired seeds (sensitivity centre trial 0, hidden layers [32]; differences "
        "from it over n = 8 seeds): the linear model (fitted with the centre's hyperparameters): worse, accuracy "
        "-0.0400 (95% interval [-0.0600, -0.0200])."
    ]
    effect.update(ci_low=None, ci_high=None, n=5)  # too few seeds to bound the interval
    set_study_user_attrs(companion, {keys.SENSITIVITY_RESULT: result})
    assert "worse, accuracy -0.0400 (its 95% interval unbounded at n = 5)." in depth_lines(study)[0]
