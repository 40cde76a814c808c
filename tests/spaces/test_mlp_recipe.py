"""Tests of the training recipe in MLPSpace and Hyperparameters: lr_schedule, label_smoothing, normalization."""

import optuna
import pytest
from optuna.samplers import RandomSampler
from optuna.trial import FixedTrial

from archsearch.spaces import Candidate, Hyperparameters, InvalidSpaceError, MLPSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

SEARCHED = {
    "lr_schedule": ["constant", "cosine", "onecycle"],
    "label_smoothing": [0.0, 0.2],
    "normalization": ["none", "batch", "layer"],
    "embedding": ["none"],
}
SWITCHED_OFF = {
    "lr_schedule": ["constant"],
    "label_smoothing": [0.0, 0.0],
    "normalization": ["none"],
    "embedding": ["none"],
}
# A trial of a study made before the recipe knobs existed.
OLD_PARAMS = {
    "n_layers": 2,
    "width_0": 64,
    "width_1": 32,
    "dropout_0": 0.1,
    "dropout_1": 0.0,
    "activation": "relu",
    "lr": 1e-3,
    "use_weight_decay": False,
    "batch_size": 128,
    "optimizer": "adam",
}


def _sample_many(space: MLPSpace, n: int) -> list[tuple[Candidate, dict]]:
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    results = []
    for _ in range(n):
        trial = study.ask()
        results.append((space.sample(trial), trial.params))
    return results


def test_regression_leaves_label_smoothing_unsuggested() -> None:
    """Check that a regression study's trials carry no label_smoothing parameter, and a classification's do."""
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    space = MLPSpace(**SEARCHED)
    regression, classification = study.ask(), study.ask()
    assert space.sample(regression, task="regression").hyperparameters.label_smoothing == 0.0
    assert "label_smoothing" not in regression.params
    space.sample(classification, task="classification")
    assert "label_smoothing" in classification.params


def test_searched_recipe_is_sampled_with_stable_parameter_names() -> None:
    """Check that lists and ranges become the params lr_schedule, label_smoothing and normalization."""
    samples = _sample_many(MLPSpace(**SEARCHED), 80)
    smoothing = set()
    for candidate, params in samples:
        hyper = candidate.hyperparameters
        assert params["lr_schedule"] == hyper.lr_schedule
        assert params["label_smoothing"] == hyper.label_smoothing
        smoothing.add(hyper.label_smoothing)
        # A linear model has no hidden layer to normalize: no parameter, and "none" in its architecture.
        if candidate.architecture.depth:
            assert params["normalization"] == candidate.architecture.normalization
        else:
            assert "normalization" not in params and candidate.architecture.normalization == "none"
    assert {c.hyperparameters.lr_schedule for c, _ in samples} == set(SEARCHED["lr_schedule"])
    assert {c.architecture.normalization for c, p in samples if "normalization" in p} == set(SEARCHED["normalization"])
    # On the 0.01 grid, so 0.0 (no smoothing) is reached exactly.
    assert 0.0 in smoothing and all(round(v * 100) == pytest.approx(v * 100) and 0 <= v <= 0.2 for v in smoothing)


def test_switched_off_recipe_adds_no_parameter() -> None:
    """Check that constant, (0, 0) and none add no params and give the defaults that train as before."""
    for candidate, params in _sample_many(MLPSpace(layers=(1, 2), **SWITCHED_OFF), 10):
        assert not {"lr_schedule", "label_smoothing", "normalization"} & set(params)
        hyper = candidate.hyperparameters
        assert (hyper.lr_schedule, hyper.label_smoothing, candidate.architecture.normalization) == (
            "constant",
            0.0,
            "none",
        )


def test_a_fixed_value_that_is_on_is_still_suggested() -> None:
    """Check that a single on value is a one-choice parameter, so params hold the whole candidate."""
    space = MLPSpace(layers=(1, 1), lr_schedule=["cosine"], label_smoothing=[0.1, 0.1], normalization=["layer"])
    candidate, params = _sample_many(space, 1)[0]
    assert (params["lr_schedule"], params["label_smoothing"], params["normalization"]) == ("cosine", 0.1, "layer")
    assert candidate.hyperparameters.lr_schedule == "cosine"


def test_old_params_replayed_through_a_switched_off_space_give_the_old_candidate() -> None:
    """Check that a trial without recipe params rebuilds today's candidate: constant, no smoothing, no norm."""
    candidate = MLPSpace(**SWITCHED_OFF).sample(FixedTrial(OLD_PARAMS))
    assert candidate.hyperparameters == Hyperparameters(lr=1e-3, weight_decay=0.0, batch_size=128, optimizer="adam")
    assert candidate.architecture.widths == (64, 32)


def test_old_params_replayed_through_a_searching_space_are_refused() -> None:
    """Check that replaying old params through a space that searches the recipe does not silently pick a value."""
    with pytest.raises(ValueError, match="lr_schedule"):
        MLPSpace(**SEARCHED).sample(FixedTrial(OLD_PARAMS))


def test_hyperparameters_from_dict_without_recipe_keys_means_the_old_training() -> None:
    """Check that stored hyperparameters written before the recipe keys still load, as before."""
    hyper = Hyperparameters.from_dict({"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adamw"})
    assert (hyper.lr_schedule, hyper.label_smoothing) == ("constant", 0.0)
    assert Hyperparameters.from_dict(hyper.to_dict()) == hyper
    with pytest.raises(
        InvalidSpaceError, match="Missing key 'optimizer' in Hyperparameters; required keys are: lr, weight_decay"
    ):
        Hyperparameters.from_dict({"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64})


def test_fixed_params_pins_a_recipe_value() -> None:
    """Check that fixed_params accepts recipe overrides and rejects one the space does not search."""
    params = MLPSpace(**SEARCHED).fixed_params([32], lr_schedule="onecycle", normalization="batch")
    assert (params["lr_schedule"], params["normalization"]) == ("onecycle", "batch")
    with pytest.raises(InvalidSpaceError, match=r"The override 'lr_schedule' of MLPSpace.fixed_params is not sampled"):
        MLPSpace(**SWITCHED_OFF).fixed_params([32], lr_schedule="cosine")
    with pytest.raises(
        InvalidSpaceError, match=r"The override 'normalization' of MLPSpace.fixed_params is not sampled"
    ):
        MLPSpace(**SEARCHED).fixed_params([], normalization="batch")


def test_is_compatible_with_names_a_changed_recipe() -> None:
    """Check that a changed schedule, smoothing or normalization makes stored trials incompatible."""
    space = MLPSpace(**SWITCHED_OFF)
    assert space.is_compatible_with(MLPSpace(**SWITCHED_OFF)) == []
    assert space.is_compatible_with(MLPSpace(**SEARCHED)) == ["lr_schedule", "label_smoothing", "normalization"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"lr_schedule": ["cosine", "step"]},
            r"'lr_schedule' parameter of \[space\] must be a non-empty list of distinct names from \{'constant', 'cosine', 'onecycle'\}",
        ),
        ({"lr_schedule": "cosine"}, r"'lr_schedule' .* list"),
        (
            {"label_smoothing": [0.0, 0.5]},
            r"'label_smoothing' parameter of \[space\] must be a pair of floats \(low, high\) with 0 <= low <= high < 0.5",
        ),
        ({"label_smoothing": [0.2, 0.1]}, r"'label_smoothing' .* 0 <= low <= high < 0.5. Got \[0.2, 0.1\]"),
        (
            {"label_smoothing": [0.0, 0.125]},
            r"'label_smoothing' .* whose span is a multiple of 0.01. Got \(0.0, 0.125\)",
        ),
        (
            {"normalization": ["batch", "group"]},
            r"'normalization' parameter of \[space\] must be a non-empty list of distinct names from \{'none', 'batch', 'layer'\}",
        ),
    ],
)
def test_mlp_space_rejects_invalid_recipe_fields(kwargs: dict, match: str) -> None:
    """Check that each invalid recipe field raises the scikit-learn style error naming the field and value."""
    with pytest.raises(InvalidSpaceError, match=match):
        MLPSpace(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"lr_schedule": "linear"},
            r"The 'lr_schedule' parameter of Hyperparameters must be one of \{'constant', 'cosine', 'onecycle'\}. Got 'linear'",
        ),
        (
            {"label_smoothing": 0.5},
            r"The 'label_smoothing' parameter of Hyperparameters must be a float in \[0, 0.5\). Got 0.5",
        ),
    ],
)
def test_hyperparameters_rejects_invalid_recipe_values(kwargs: dict, match: str) -> None:
    """Check that Hyperparameters validates the recipe values like its other fields."""
    with pytest.raises(InvalidSpaceError, match=match):
        Hyperparameters(lr=1e-3, weight_decay=0.0, batch_size=32, optimizer="adam", **kwargs)
