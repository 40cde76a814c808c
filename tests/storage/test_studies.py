"""Tests of helpers about studies that need no database: file names made from study names, the metric's name."""

from __future__ import annotations

import optuna
import pytest

from archsearch.storage import name_metric, study_file_stem


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("digits", "digits"),
        ("../x/evil", "_x_evil"),
        ("/abs/evil", "_abs_evil"),
        ("..", "study"),
        ("a\\b:c", "a_b_c"),
        (".hidden", "hidden"),
        ("wine-v2.1", "wine-v2.1"),
        ("Zürich 数据", "Zürich_数据"),
    ],
)
def test_study_file_stem_cannot_name_another_folder(name: str, stem: str) -> None:
    """Check that separators, '..' and leading dots never survive into a file name made from a study name."""
    assert study_file_stem(name) == stem
    assert "/" not in stem and "\\" not in stem and not stem.startswith(".")


def test_name_metric_names_the_objective_for_the_dashboard() -> None:
    """Check that the study's one objective is named "val <metric>", as optuna-dashboard will show it."""
    study = optuna.create_study(direction="maximize")
    name_metric(study, "accuracy")
    assert study.metric_names == ["val accuracy"]
