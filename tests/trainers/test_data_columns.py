"""Tests of which input columns a file's model trains on: row identifiers left out, `[data] drop` and `keep_ids`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from archsearch.trainers.data import DataError, DataSpec, load_data


def _rows(n: int = 40) -> pd.DataFrame:
    """Real features (one integral but shuffled, one sorted but fractional) beside three row identifiers."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "rownames": np.arange(1, n + 1),  # R's write.csv row names
            "Unnamed: 0": np.arange(n),  # pandas' to_csv index
            "ID": [f"c{i:03d}" for i in range(n)],  # a text identifier: named like one
            "serial": np.arange(1000, 1000 + 3 * n, 3)[::-1],  # unique, integral, in (decreasing) order
            "visits": rng.permutation(n),  # unique and integral, but in no order: a feature
            "time": np.sort(rng.random(n)),  # in order, but not integral: a feature
            "city": rng.choice(["oslo", "lima"], n),
            "label": np.array(["cat", "dog"])[np.arange(n) % 2],
        }
    )


def _spec(tmp_path, frame: pd.DataFrame, **kwargs) -> DataSpec:
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    return DataSpec(dataset=None, path=str(path), target="label", **kwargs)


def test_row_identifiers_are_left_out_and_named(tmp_path) -> None:
    """Check that columns named like a row index, or unique integers in order, are not trained on, with why."""
    data = load_data(_spec(tmp_path, _rows()))
    assert data.preprocessing.columns == ("visits", "time", "city")
    assert data.dropped == {
        "rownames": "named like a row identifier",
        "Unnamed: 0": "named like a row identifier",
        "ID": "named like a row identifier",
        "serial": "unique integers in row order",
    }
    # The fingerprint is of the columns trained on, so that dropping one more is a change of data.
    assert data.fingerprint["columns"] == ["visits", "time", "city"]


def test_keep_ids_trains_on_row_identifiers(tmp_path) -> None:
    """Check that keep_ids = true keeps every column the rule would leave out, and drop still drops."""
    data = load_data(_spec(tmp_path, _rows(), keep_ids=True, drop=("Unnamed: 0",)))
    assert data.preprocessing.columns == ("rownames", "ID", "serial", "visits", "time", "city")
    assert data.dropped == {"Unnamed: 0": "[data] drop"}


def test_drop_leaves_out_named_columns(tmp_path) -> None:
    """Check that [data] drop leaves out the columns it names, whatever they hold."""
    data = load_data(_spec(tmp_path, _rows(), drop=["city", "time"]))
    assert data.preprocessing.columns == ("visits",)
    assert data.dropped["city"] == data.dropped["time"] == "[data] drop"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"drop": ["vists"]},
            r"\[data\] drop names 'vists', which is not a column of '.*rows\.csv'; did you mean 'visits'\?",
        ),
        ({"drop": ["label"]}, r"\[data\] drop names the target 'label'; set another `target` in \[data\] or keep it\."),
        (
            {"drop": ["visits", "time", "city"]},
            r"'.*rows\.csv' has no input columns left besides the target 'label': 7 columns are left out "
            r"\('rownames', 'Unnamed: 0', 'ID', 'serial', 'visits' and 2 more\)",
        ),
    ],
)
def test_drop_errors_name_the_column(tmp_path, kwargs: dict, match: str) -> None:
    """Check that a drop naming no column, the target, or every input is one error naming what to change."""
    with pytest.raises(DataError, match=match):
        load_data(_spec(tmp_path, _rows(), **kwargs))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"drop": "city"}, r"The 'drop' parameter of \[data\] must be a list of distinct column names\. Got 'city'"),
        (
            {"drop": ["a", "a"]},
            r"The 'drop' parameter of \[data\] must be a list of distinct column names\. Got \['a', 'a'\]",
        ),
        ({"keep_ids": 1}, r"The 'keep_ids' parameter of \[data\] must be true or false\. Got 1 instead\."),
        (
            {"dataset": "wine", "drop": ["alcohol"]},
            r"The 'drop' parameter of \[data\] must be empty with a built-in dataset or an NPZ file",
        ),
    ],
)
def test_data_spec_rejects_bad_drop_and_keep_ids(kwargs: dict, match: str) -> None:
    """Check that drop and keep_ids are validated at construction, in the [data] section's words."""
    with pytest.raises(DataError, match=match):
        DataSpec(**kwargs)


def test_drop_and_keep_ids_round_trip_and_default_to_the_rule() -> None:
    """Check that a new config stores keep_ids (false) explicitly and drop only when set, and both round-trip."""
    assert "keep_ids" in DataSpec().to_dict() and DataSpec().to_dict()["keep_ids"] is False
    assert "drop" not in DataSpec().to_dict()
    spec = DataSpec(dataset=None, path="rows.csv", drop=["a", "b"], keep_ids=True)
    assert spec.drop == ("a", "b")
    assert DataSpec.from_dict(spec.to_dict()) == spec


def test_a_file_whose_only_input_counts_rows_says_how_to_keep_it(tmp_path) -> None:
    """Check that a lone input of sorted distinct integers is refused with the setting that keeps it."""
    frame = pd.DataFrame({"x": np.arange(30), "label": np.arange(30) % 2})
    with pytest.raises(
        DataError,
        match=r"has no input columns left besides the target 'label': 1 column is left out \('x'\) \(set keep_ids "
        r"= true in \[data\] to train on row identifiers\)\.",
    ):
        load_data(_spec(tmp_path, frame))
    assert load_data(_spec(tmp_path, frame, keep_ids=True)).preprocessing.columns == ("x",)
