"""Tests for archsearch.trainers.explain: attributions per column, prototypes and counterfactuals of a model
whose answer is known (the label depends on `a` and `colour` only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archsearch.trainers import DataError, load_model
from archsearch.trainers.explain import (
    ColumnSpace,
    attributions,
    counterfactual_of,
    load_program,
    members_of,
    prototype_of,
    rank_agreement,
    unscaled,
)
from archsearch.trainers.explain._attributions import grouped, integrated_gradients

from .conftest import Exported


def _space(exported: Exported, folder) -> tuple:
    predictor = load_model(folder)
    data = exported.data
    train = unscaled(data.preprocessing, data.x_train)
    return predictor, ColumnSpace.of(predictor.preprocessing, train, data.y_train)


def test_column_space_groups_one_hot_features_into_their_column(exported: Exported) -> None:
    predictor, space = _space(exported, exported.single)
    assert space.columns == ("a", "b", "colour", "c")
    assert space.groups.tolist() == [0, 1, 2, 2, 2, 3]  # colour's three categories are one column
    assert grouped(np.ones((2, 6)), space.groups, 4).tolist() == [[1, 1, 3, 1]] * 2
    # unscaled inverts standardize, so the training rows come back in the user's units
    raw = exported.data.preprocessing.encode(exported.data.raw_test)
    back = unscaled(exported.data.preprocessing, exported.data.preprocessing.standardize(raw))
    np.testing.assert_allclose(back, raw, atol=1e-5)
    assert space.baseline()[2:5].sum() == pytest.approx(1.0)  # colour's training frequencies


def test_integrated_gradients_complete_to_the_output_change(exported: Exported) -> None:
    """The column attributions of a row add up to its log-probability less the baseline's (IG's completeness)."""
    predictor, space = _space(exported, exported.single)
    rows = predictor.preprocessing.encode(exported.data.raw_test[:20]).astype(np.float64)
    ig = integrated_gradients(predictor._module, rows, space.baseline(), space.groups, 4, n_classes=2, steps=64)
    with torch.no_grad():
        out = torch.log_softmax(
            predictor._module(torch.as_tensor(np.vstack([rows, space.baseline()]), dtype=torch.float32)), 1
        )
    change = (out[:-1] - out[-1]).numpy().T  # (classes, rows)
    np.testing.assert_allclose(ig.sum(axis=2), change, atol=0.05)


@pytest.mark.parametrize("which", ["single", "ensemble"])
def test_attributions_rank_the_used_columns_first(exported: Exported, which: str) -> None:
    predictor, space = _space(exported, getattr(exported, which))
    data = exported.data
    rows = predictor.preprocessing.encode(data.raw_test).astype(np.float64)
    found = attributions(predictor, space, rows, data.y_test, "accuracy", repeats=3)
    for ranking in (found["integrated_gradients"]["importance"], found["permutation"]["drop"]):
        assert set(sorted(ranking, key=lambda c: -ranking[c])[:2]) == {"a", "colour"}
    assert set(found["integrated_gradients"]["per_class"]) == {"no", "yes"}
    assert found["permutation"]["value"] > 0.9
    if which == "ensemble":
        assert found["members"]["n"] == 2 and found["members"]["integrated_gradients"]["n_pairs"] == 1
        assert len(members_of(predictor)) == 2
    else:
        assert "members" not in found


def test_rank_agreement_of_identical_and_reversed_rankings() -> None:
    assert rank_agreement([np.arange(5.0), np.arange(5.0)]).mean == pytest.approx(1.0)
    assert rank_agreement([np.arange(5.0), -np.arange(5.0)]).low == pytest.approx(-1.0)
    assert rank_agreement([np.arange(5.0)]).to_dict() == {"mean_spearman": None, "min_spearman": None, "n_pairs": 0}


@pytest.mark.parametrize("target", [0, 1])
def test_prototype_is_its_class_inside_the_training_range(exported: Exported, target: int) -> None:
    predictor, space = _space(exported, exported.ensemble)
    found = prototype_of(predictor, space, target_class=target)
    assert found["confidence"] >= 0.9 and found["inside_training_range"]
    assert found["row"]["colour"] in ("red", "green", "blue")  # projected back to one category
    assert (found["row"]["colour"] == "red" or found["row"]["a"] > 0.5) == (target == 1)
    assert found["nearest_training_row"]["distance_sd"] >= 0


def test_counterfactual_flips_the_decision_and_the_program_agrees(exported: Exported) -> None:
    predictor, space = _space(exported, exported.single)
    rows = predictor.preprocessing.encode(exported.data.raw_test).astype(np.float64)
    program = load_program(exported.single)
    found = counterfactual_of(predictor, program, space, rows[0], [0, 1, 3])  # a, b, c: never colour
    assert found["found"] and found["verified"] and found["n_changed"] >= 1
    assert "colour" not in found["changes"] and found["from_class"] != found["to_class"]
    only_noise = counterfactual_of(predictor, program, space, rows[0], [3])  # c alone cannot flip it
    assert not only_noise["found"] and only_noise["changes"] == {}


def test_encode_row_refuses_rows_outside_the_schema(exported: Exported) -> None:
    _, space = _space(exported, exported.single)
    row = {"a": 0.1, "b": 0.0, "colour": "red", "c": 0.2}
    assert space.encode_row(row).shape == (6,)
    with pytest.raises(DataError, match=r"not in the data's schema: 'd'"):
        space.encode_row(row | {"d": 1})
    with pytest.raises(DataError, match=r"lacks the columns 'c'"):
        space.encode_row({k: v for k, v in row.items() if k != "c"})
    with pytest.raises(DataError, match=r"'colour' is 'purple', not one of the categories"):
        space.encode_row(row | {"colour": "purple"})


class _BothAboveHalf(torch.nn.Module):
    """Class 1 exactly when a > 0.5 and b > 0.5: no single column can flip a row with both below."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.minimum(x[:, 0] - 0.5, x[:, 1] - 0.5)
        return torch.stack([torch.zeros_like(gate), 10 * gate], dim=1)


def test_counterfactual_changes_two_columns_when_one_cannot(exported: Exported) -> None:
    from archsearch.trainers.explain._counterfactuals import counterfactual
    from archsearch.trainers.explain._inputs import ColumnSpace

    from ..conftest import standardized

    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(300, 3))
    data = standardized(x, (x[:, 0] > 0.5) & (x[:, 1] > 0.5), (0, 1), names=("a", "b", "c"))
    space = ColumnSpace.of(data.preprocessing, x[:180], data.y_train)
    found = counterfactual(
        _BothAboveHalf(),
        None,
        space,
        np.array([-1.0, -1.0, 0.0]),
        [0, 1, 2],
        reached=lambda out: np.asarray(out).argmax(axis=1) == 1,
        margin=lambda out: out[:, 1] - out[:, 0],
    )
    assert found["found"] and found["verified"] and found["search"] == "two columns"
    assert set(found["changes"]) == {"a", "b"}
    # bisected back to just past the boundary, not left at a grid point
    assert found["changes"]["a"]["to"] == pytest.approx(0.5, abs=0.01) and found["changes"]["b"]["to"] == pytest.approx(
        0.5, abs=0.01
    )
