"""Tests of the report's lines on searched blocks and heads (issue #24)."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution

from archsearch.dashboards._choices import choice_lines
from archsearch.storage import keys


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
