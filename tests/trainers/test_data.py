import io
import json

import numpy as np
import pandas as pd
import pytest

from archsearch.trainers.data import (
    BUILTIN_DATASETS,
    DataError,
    DataSpec,
    Preprocessing,
    TeacherSpec,
    describe_datasets,
    load_data,
)

SMALL_TEACHER = TeacherSpec(widths=(8,), rows=300, features=5, classes=3, noise=0.1, seed=1)


def _table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small mixed table: two numeric columns, a string column, a bool column and string labels."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "size": rng.normal(10.0, 3.0, n),
            "count": rng.integers(0, 50, n),
            "city": rng.choice(["paris", "oslo", "lima"], n),
            "member": rng.random(n) < 0.5,
            "label": np.array(["cat", "dog"])[np.arange(n) % 2],
        }
    )


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def _file_spec(path, **kwargs) -> DataSpec:
    return DataSpec(dataset=None, path=str(path), **kwargs)


def _write_csv(tmp_path, frame: pd.DataFrame, name: str = "data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("name", "task", "rows", "features", "outputs"),
    [
        ("digits", "classification", 1797, 64, 10),
        ("breast_cancer", "classification", 569, 30, 2),
        ("wine", "classification", 178, 13, 3),
        ("diabetes", "regression", 442, 10, 1),
    ],
)
def test_load_data_builtin_shapes_and_task(name, task, rows, features, outputs):
    """Check that each scikit-learn built-in loads with its task, sizes and dtypes."""
    data = load_data(DataSpec(dataset=name))
    assert data.task == task
    assert data.n_features == features
    assert data.n_outputs == outputs
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == rows
    for x in (data.x_train, data.x_val, data.x_test):
        assert x.dtype == np.float32 and x.flags.c_contiguous
    assert data.y_train.dtype == (np.int64 if task == "classification" else np.float32)
    assert isinstance(data.raw_test, np.ndarray) and data.raw_test.shape == (len(data.x_test), features)


@pytest.mark.parametrize("name", ["wine", "diabetes"])
def test_builtin_dataset_cache_equals_scikit_learn_and_spares_its_import(name, tmp_path, monkeypatch):
    """Check that the cached arrays equal scikit-learn's, that a fresh process reads them without importing
    scikit-learn, that a damaged cache is rewritten, and that an empty ARCHSEARCH_CACHE_DIR keeps none."""
    import subprocess
    import sys

    from archsearch.trainers._datasets import load_builtin
    from archsearch.trainers.data import TeacherSpec

    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path))
    fresh = load_builtin(name, TeacherSpec())
    (cache,) = tmp_path.glob(f"{name}-sklearn-*.npz")
    cached = load_builtin(name, TeacherSpec())
    np.testing.assert_array_equal(cached.x, fresh.x)
    np.testing.assert_array_equal(cached.y, fresh.y)
    assert cached.y.dtype == fresh.y.dtype and cached.columns == fresh.columns and cached.task == fresh.task
    code = (
        "import sys; from archsearch.trainers._datasets import load_builtin; from archsearch.trainers.data import "
        f"TeacherSpec; load_builtin({name!r}, TeacherSpec()); print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
    cache.write_bytes(b"not an npz")
    np.testing.assert_array_equal(load_builtin(name, TeacherSpec()).x, fresh.x)
    with np.load(cache) as rewritten:
        np.testing.assert_array_equal(rewritten["x"], fresh.x)
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", "")
    cache.unlink()
    load_builtin(name, TeacherSpec())
    assert not list(tmp_path.glob("*.npz"))


def test_load_data_teacher_shapes_and_balance():
    """Check that the teacher task has the requested sizes and no class below 5% of the rows."""
    spec = TeacherSpec(widths=(16, 8), rows=600, features=7, classes=5, noise=0.0, seed=3)
    data = load_data(DataSpec(dataset="teacher", teacher=spec))
    assert (data.task, data.n_features, data.n_outputs) == ("classification", 7, 5)
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    assert len(y) == 600
    assert np.bincount(y, minlength=5).min() >= 0.05 * 600


def test_load_data_teacher_deterministic_for_a_seed():
    """Check that the teacher gives identical data for one seed and different data for another."""
    first = load_data(DataSpec(dataset="teacher", teacher=SMALL_TEACHER))
    again = load_data(DataSpec(dataset="teacher", teacher=SMALL_TEACHER))
    other = load_data(DataSpec(dataset="teacher", teacher=TeacherSpec(**{**SMALL_TEACHER.__dict__, "seed": 2})))
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    assert not np.array_equal(first.raw_test, other.raw_test)


def test_load_data_teacher_linear_without_hidden_layers():
    """Check that widths=() gives a linear teacher that still uses every class."""
    spec = TeacherSpec(widths=(), rows=300, features=4, classes=3, noise=0.0)
    data = load_data(DataSpec(dataset="teacher", teacher=spec))
    assert set(np.unique(data.y_train)) == {0, 1, 2}


def test_load_data_stratified_split_keeps_class_proportions():
    """Check that every split keeps each class's share of the rows, within rounding."""
    data = load_data(DataSpec(dataset="wine", val_fraction=0.25, test_fraction=0.25))
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    overall = np.bincount(y) / len(y)
    for split in (data.y_train, data.y_val, data.y_test):
        # One row of rounding per class is the most a split may deviate.
        assert np.all(np.abs(np.bincount(split, minlength=3) - overall * len(split)) <= 1.5)


def test_load_data_split_seeded():
    """Check that the split repeats for a seed and changes with DataSpec.seed."""
    first = load_data(DataSpec(dataset="wine", seed=4))
    again = load_data(DataSpec(dataset="wine", seed=4))
    other = load_data(DataSpec(dataset="wine", seed=5))
    np.testing.assert_array_equal(first.raw_test, again.raw_test)
    assert not np.array_equal(first.raw_test, other.raw_test)


def test_load_data_standardizes_with_train_statistics_only():
    """Check that standardization uses the training split: train mean ~0 and std ~1, validation not exactly."""
    data = load_data(DataSpec(dataset="breast_cancer"))
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1.0, atol=1e-4)
    assert np.abs(data.x_val.mean(axis=0)).max() > 1e-3


def test_load_data_regression_scales_targets_with_train_statistics():
    """Check that regression targets are float32, scaled by the training mean and std."""
    data = load_data(DataSpec(dataset="diabetes"))
    prep = data.preprocessing
    assert abs(float(data.y_train.mean())) < 1e-5 and abs(float(data.y_train.std()) - 1.0) < 1e-4
    assert prep.classes is None and 100 < prep.target_mean < 200 and prep.target_scale > 10


def test_load_data_csv_round_trips_through_encode_and_json(tmp_path):
    """Check that a CSV with string columns and labels re-encodes its raw rows and survives a JSON round trip."""
    data = load_data(_file_spec(_write_csv(tmp_path, _table()), target="label"))
    prep = data.preprocessing
    assert data.name == "data.csv"
    assert prep.columns == ("size", "count", "city", "member")
    assert prep.categorical == {"city": ("lima", "oslo", "paris"), "member": ("False", "True")}
    assert prep.classes == ("cat", "dog")
    assert isinstance(data.raw_test, pd.DataFrame) and "label" not in data.raw_test.columns

    restored = Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert restored == prep
    # The raw test rows, re-encoded after the round trip and in another column order, give the model input.
    shuffled = data.raw_test[list(reversed(prep.columns))]
    np.testing.assert_allclose(restored.standardize(restored.encode(shuffled)), data.x_test, atol=1e-6)
    np.testing.assert_array_equal(restored.decode_labels(np.array([1, 0])), ["dog", "cat"])


def test_preprocessing_encode_unseen_category_as_zeros(tmp_path):
    """Check that a category unseen in training encodes as all zeros and numbers arrive as given."""
    prep = load_data(_file_spec(_write_csv(tmp_path, _table()), target="label")).preprocessing
    rows = pd.DataFrame({"size": [1.5], "count": [2], "city": ["rome"], "member": [True]})
    encoded = prep.encode(rows)
    assert encoded.shape == (1, len(prep.encoded_names)) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded[0], [1.5, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0])


def test_preprocessing_encode_accepts_a_2d_array_in_column_order(tmp_path):
    """Check that an object array in `columns` order encodes like the DataFrame it came from."""
    data = load_data(_file_spec(_write_csv(tmp_path, _table()), target="label"))
    prep = data.preprocessing
    as_array = data.raw_test[list(prep.columns)].to_numpy(dtype=object)
    np.testing.assert_array_equal(prep.encode(as_array), prep.encode(data.raw_test))


def test_preprocessing_to_dict_keeps_integer_labels():
    """Check that integer class labels come back as ints after a JSON round trip."""
    prep = load_data(DataSpec(dataset="wine")).preprocessing
    restored = Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert restored == prep and restored.classes == (0, 1, 2)
    assert restored.decode_labels(np.array([2, 0])).tolist() == [2, 0]


def test_load_data_parquet(tmp_path):
    """Check that a Parquet file loads like the same CSV."""
    path = tmp_path / "data.parquet"
    _table().to_parquet(path)
    from_parquet = load_data(_file_spec(path, target="label"))
    from_csv = load_data(_file_spec(_write_csv(tmp_path, _table()), target="label"))
    assert from_parquet.preprocessing == from_csv.preprocessing
    np.testing.assert_allclose(from_parquet.x_train, from_csv.x_train, atol=1e-6)


def test_load_data_npz(tmp_path):
    """Check that an NPZ file with X and y loads, with x0.. column names and raw X rows kept."""
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, X=rng.normal(size=(50, 3)), y=rng.normal(size=50))
    data = load_data(_file_spec(path))
    assert data.task == "regression" and data.preprocessing.columns == ("x0", "x1", "x2")
    np.testing.assert_allclose(data.preprocessing.standardize(data.preprocessing.encode(data.raw_test)), data.x_test)


def test_load_data_npz_with_one_array_per_block(tmp_path):
    """Check that arrays X_<name> are read side by side, in the file's order, each a feature block."""
    rng = np.random.default_rng(0)
    path = tmp_path / "two.npz"
    vgg, xception = rng.normal(size=(60, 3)), rng.normal(size=(60, 2))
    np.savez(path, X_vgg=vgg, X_xception=xception, y=np.arange(60) % 3)
    data = load_data(_file_spec(path, task="classification"))
    assert data.preprocessing.blocks == {"vgg": ((0, 3),), "xception": ((3, 5),)}
    assert data.n_features == 5
    stacked = np.concatenate([vgg, xception], axis=1)
    assert all(np.isclose(stacked, row).all(axis=1).any() for row in data.raw_test)  # each test row, vgg then xception


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"X": np.zeros((6, 2)), "X_a": np.zeros((6, 2))}, r"has both 'X' and 'X_a'; keep either one 'X' array"),
        ({"X_a": np.zeros((6, 2)), "X_b": np.zeros((5, 2))}, r"Arrays 'X_<block>' .* same rows; got 'X_a' \(6, 2\)"),
        ({"X_a+b": np.zeros((6, 2))}, r"Array 'X_a\+b' .*: 'a\+b' is not a block name"),
        ({"X_a": np.zeros((6, 2))}, r"has no array 'y'; an NPZ file needs arrays 'X' \(rows, features\) or one"),
    ],
)
def test_load_data_npz_blocks_errors(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **({"y": np.arange(6) % 2} if len(arrays) > 1 or "X_a+b" in arrays else {}), **arrays)
    with pytest.raises(DataError, match=match):
        load_data(_file_spec(path, task="classification"))


@pytest.mark.parametrize("impute", ["mean", "median"])
def test_load_data_impute_fills_from_training_split(tmp_path, impute):
    """Check that imputation fills NaN with the training split's mean or median, also when encoding later."""
    frame = _table()
    frame.loc[[3, 7], "size"] = np.nan
    data = load_data(_file_spec(_write_csv(tmp_path, frame), target="label", impute=impute))
    prep = data.preprocessing
    assert set(prep.fill_values) == {"size", "count"}
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_test).all()
    rows = pd.DataFrame({"size": [np.nan], "count": [1], "city": ["oslo"], "member": [False]})
    assert prep.encode(rows)[0, 0] == np.float32(prep.fill_values["size"])


@pytest.mark.parametrize(
    ("target", "task", "expected"),
    [
        (np.array([0.0, 1.0, 2.0] * 10), "auto", "classification"),  # integral floats, few values
        (np.arange(30), "auto", "regression"),  # integers, more than 20 values
        (np.linspace(0, 1, 30), "auto", "regression"),
        (np.array(["a", "b", "c"] * 10), "auto", "classification"),
        (np.array([0, 1, 2] * 10), "regression", "regression"),
    ],
)
def test_load_data_task_rule(tmp_path, target, task, expected):
    """Check the "auto" task rule and that an explicit task overrides it."""
    frame = pd.DataFrame({"x": np.arange(30.0) % 7, "target": target})
    assert load_data(_file_spec(_write_csv(tmp_path, frame), task=task)).task == expected


def test_data_spec_dict_round_trip():
    """Check that to_dict/from_dict invert each other, also for a file spec and a teacher spec."""
    for spec in (
        DataSpec(dataset="teacher", teacher=TeacherSpec(widths=(), classes=3)),
        DataSpec(dataset=None, path="runs.csv", target="y", impute="mean"),
    ):
        assert DataSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_data_spec_from_dict_path_implies_no_dataset():
    """Check that a [data] table with a path and no dataset reads the file."""
    spec = DataSpec.from_dict({"path": "runs.parquet"})
    assert spec.dataset is None and spec.path == "runs.parquet"


def test_teacher_spec_from_dict_list_widths():
    """Check that TOML-style list widths become a tuple."""
    spec = DataSpec.from_dict({"dataset": "teacher", "teacher": {"widths": [4, 2]}})
    assert spec.teacher.widths == (4, 2)


def test_describe_datasets_lists_every_builtin():
    """Check that describe_datasets has one entry per built-in with its sizes."""
    described = {d["name"]: d for d in describe_datasets()}
    assert tuple(described) == BUILTIN_DATASETS
    assert described["wine"] == {**described["wine"], "task": "classification", "rows": 178, "classes": 3}
    assert described["diabetes"]["classes"] is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_fraction": 1.2}, r"'val_fraction' parameter of \[data\] must be a float in the range \(0, 1\).*Got 1.2"),
        (
            {"val_fraction": 0.5, "test_fraction": 0.5},
            r"The 'test_fraction' parameter of \[data\] must be below 1 - val_fraction = 0\.5 \(val_fraction \+ "
            r"test_fraction < 1\)\. Got 0\.5 instead\.",
        ),
        (
            {"val_fraction": 1.5},
            r"The 'val_fraction' parameter of \[data\] must be a float in the range \(0, 1\)\. Got 1\.5",
        ),
        ({"test_fraction": 0}, r"'test_fraction'.*Got 0 instead"),
        ({"dataset": "mnist"}, r"'dataset'.*'digits', 'breast_cancer'.*Got 'mnist'"),
        ({"dataset": None}, r"'dataset'.*Got None"),
        ({"path": "x.csv"}, r"'dataset'.*None when 'path' is given.*Got 'digits'"),
        ({"dataset": None, "path": "x.xlsx"}, r"'path'.*\.csv, \.parquet, \.pq or \.npz.*Got 'x.xlsx'"),
        ({"task": "ranking"}, r"'task'.*Got 'ranking'"),
        ({"impute": "zero"}, r"'impute'.*Got 'zero'"),
        ({"seed": -1}, r"'seed'.*Got -1"),
        ({"target": ""}, r"'target'.*Got ''"),
        ({"teacher": {"rows": 10}}, r"'teacher'.*a \[data.teacher\] table"),
    ],
)
def test_data_spec_rejects_invalid_values(kwargs, match):
    """Check that DataSpec names the parameter, the rule and the value."""
    with pytest.raises(DataError, match=match):
        DataSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": (8, 0)}, r"'widths' parameter of \[data.teacher\].*\[1, 65,536\].*Got \[8, 0\]"),
        ({"widths": 8}, r"'widths'.*Got 8"),
        ({"classes": 1}, r"'classes'.*\[2, 1,000\].*Got 1"),
        ({"noise": 1.5}, r"'noise'.*\[0, 1\].*Got 1.5"),
        ({"rows": 2.5}, r"'rows'.*Got 2.5"),
    ],
)
def test_teacher_spec_rejects_invalid_values(kwargs, match):
    """Check that TeacherSpec names the parameter, the rule and the value."""
    with pytest.raises(DataError, match=match):
        TeacherSpec(**kwargs)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"taget": "y"}, r"Unknown key 'taget' in \[data\]; did you mean 'target'\?"),
        ({"colour": "y"}, r"Unknown key 'colour' in \[data\]; valid keys are: dataset, path, target"),
        (
            {"dataset": "teacher", "teacher": {"widht": 3}},
            r"Unknown key 'widht' in \[data.teacher\]; did you mean 'widths'\?",
        ),
        ({"dataset": "teacher", "teacher": {"zzz": 3}}, r"Unknown key 'zzz' in \[data.teacher\]; valid keys"),
        ({"teacher": {"rows": 100}}, r"\[data.teacher\] is only used with dataset = \"teacher\""),
    ],
)
def test_data_spec_from_dict_rejects_unknown_keys(table, match):
    """Check that unknown keys and a stray teacher table are rejected, not ignored."""
    with pytest.raises(DataError, match=match):
        DataSpec.from_dict(table)


def test_load_data_missing_target_column(tmp_path):
    """Check that a missing target column lists the available columns."""
    with pytest.raises(DataError, match=r"Target column 'target' not found in .*data.csv.*'size', 'count', 'city'"):
        load_data(_file_spec(_write_csv(tmp_path, _table())))


def test_load_data_nan_features_suggest_impute(tmp_path):
    """Check that NaN inputs name each column with its count and suggest impute."""
    frame = _table()
    frame.loc[[1, 2], "size"] = np.nan
    frame.loc[5, "city"] = None
    with pytest.raises(DataError, match=r"Missing values \(NaN\) in .*: 'size' \(2\), 'city' \(1\).*impute = \"mean\""):
        load_data(_file_spec(_write_csv(tmp_path, frame), target="label"))


def test_load_data_infinite_features_even_with_impute(tmp_path):
    """Check that infinite inputs are an error even with imputation on."""
    frame = _table()
    frame.loc[4, "size"] = np.inf
    with pytest.raises(DataError, match=r"Infinite values in .*'size' \(1\)"):
        load_data(_file_spec(_write_csv(tmp_path, frame), target="label", impute="mean"))


def test_load_data_numeric_column_with_text(tmp_path):
    """Check that a mostly numeric column with stray text names the column and the values."""
    frame = _table()
    frame["size"] = frame["size"].astype(object)
    frame.loc[3, "size"] = "?"
    with pytest.raises(DataError, match=r"Column 'size' .* mostly numbers .* '\?'"):
        load_data(_file_spec(_write_csv(tmp_path, frame), target="label"))


def test_load_data_date_column(tmp_path):
    """Check that a datetime column is rejected with a hint to convert it."""
    frame = _table()
    frame["when"] = pd.Timestamp("2024-01-01")
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match=r"Column 'when' .* dates"):
        load_data(_file_spec(path, target="label"))


def test_load_data_nan_target(tmp_path):
    """Check that missing target values are an error naming the target."""
    frame = _table()
    frame.loc[0, "label"] = None
    with pytest.raises(DataError, match=r"Target 'label' in .* has 1 missing values"):
        load_data(_file_spec(_write_csv(tmp_path, frame), target="label"))


def test_load_data_single_class(tmp_path):
    """Check that a target with one class is rejected."""
    frame = _table().assign(label="cat")
    with pytest.raises(DataError, match=r"Target 'label' .* single class \('cat'\)"):
        load_data(_file_spec(_write_csv(tmp_path, frame), target="label"))


def test_load_data_too_few_rows_per_class(tmp_path):
    """Check that a class with fewer than 3 rows names the class and the minimum."""
    frame = _table(n=20)
    frame.loc[[0, 1], "label"] = "bird"
    with pytest.raises(DataError, match=r"fewer than 3 rows: 'bird' \(2\).*at least 3 rows of every class"):
        load_data(_file_spec(_write_csv(tmp_path, frame), target="label"))


def test_load_data_too_few_rows_for_regression(tmp_path):
    """Check that a regression dataset needs at least 3 rows."""
    frame = pd.DataFrame({"x": [1.0, 2.0], "target": [0.5, 1.5]})
    with pytest.raises(DataError, match=r"has 2 rows; a train/val/test split needs at least 3"):
        load_data(_file_spec(_write_csv(tmp_path, frame)))


@pytest.mark.parametrize("task", ["auto", "classification"])
def test_load_data_one_row_is_too_few_rows_not_a_single_class(tmp_path, task):
    """Check that a 1-row CSV is refused for its row count, whatever the task (it was called "a single class")."""
    frame = _table().iloc[:1]
    with pytest.raises(DataError, match=r"has 1 row; a train/val/test split needs at least 3 \(one in each\)"):
        load_data(_file_spec(_write_csv(tmp_path, frame), target="label", task=task))


def test_load_data_empty_table(tmp_path):
    """Check that a file with a header and no rows is rejected."""
    with pytest.raises(DataError, match=r"has no rows"):
        load_data(_file_spec(_write_csv(tmp_path, _table().iloc[:0]), target="label"))


def test_load_data_regression_needs_numeric_target(tmp_path):
    """Check that a string target cannot be a regression target."""
    with pytest.raises(DataError, match=r"Target 'label' .* not numeric .*'cat'.* task = \"classification\""):
        load_data(_file_spec(_write_csv(tmp_path, _table()), target="label", task="regression"))


def test_load_data_classification_needs_discrete_target(tmp_path):
    """Check that non-integral numbers cannot be class labels."""
    frame = pd.DataFrame({"x": np.arange(30.0) % 7, "target": np.linspace(0, 1, 30)})
    with pytest.raises(DataError, match=r"non-integral values .* task = \"regression\""):
        load_data(_file_spec(_write_csv(tmp_path, frame), task="classification"))


def test_load_data_missing_file(tmp_path):
    """Check that a missing file names the path and the [data] key, never an internal class name."""
    with pytest.raises(DataError, match=r"Data file .*nope.csv' does not exist; check `path` in \[data\]\.$"):
        load_data(_file_spec(tmp_path / "nope.csv"))


def test_load_data_target_in_another_case_suggests_the_column(tmp_path):
    """Check that a target differing only in case names the column meant and lists a few columns, not all 87."""
    frame = pd.DataFrame({f"COL{i}": np.arange(12) % 3 for i in range(86)} | {"Purchase": ["No", "Yes"] * 6})
    with pytest.raises(DataError, match=r"Target column 'purchase' not found .*; did you mean 'Purchase'\?") as error:
        load_data(_file_spec(_write_csv(tmp_path, frame), target="purchase"))
    message = str(error.value)
    # A handful of the 87 column names, then a count: the line stays readable.
    assert "and 82 more" in message and "'COL50'" not in message and len(message) < 400
    assert "DataSpec" not in message


def test_data_spec_errors_name_the_section_not_the_class():
    """Check that a bad [data] or [data.teacher] value is reported as that section, not as DataSpec/TeacherSpec."""
    with pytest.raises(DataError, match=r"The 'impute' parameter of \[data\] must be one of") as error:
        DataSpec(impute="zero")
    assert "DataSpec" not in str(error.value)
    with pytest.raises(DataError, match=r"The 'noise' parameter of \[data.teacher\] must be a float"):
        TeacherSpec(noise=2.0)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("data.csv", b"", "CSV"),
        ("data.parquet", b"not a parquet file", "Parquet"),
        ("data.npz", b"not an npz file", "NPZ"),
        ("data.npz", b"PK\x03\x04 broken zip", "NPZ"),
        ("data.npz", _npy_bytes(), "NPZ"),
    ],
)
def test_load_data_corrupt_file(tmp_path, name, content, kind):
    """Check that an unreadable file is wrapped in a DataError naming the file and format."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"Could not read .*{name}' as {kind}") as error:
        load_data(_file_spec(path))
    assert error.value.__cause__ is not None


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"X": np.zeros((5, 2))}, r"has no array 'y'.*It has: 'X'"),
        ({"y": np.zeros(5)}, r"has no array 'X'"),
        ({"X": np.zeros(5), "y": np.zeros(5)}, r"Array 'X' .* must be 2-D .* got shape \(5,\)"),
        ({"X": np.zeros((5, 2)), "y": np.zeros(4)}, r"differ in length: X has 5 rows, y has 4"),
        ({"X": np.array([["a", "b"]] * 5), "y": np.zeros(5)}, r"Array 'X' .* must be numeric"),
    ],
)
def test_load_data_bad_npz(tmp_path, arrays, match):
    """Check that an NPZ without usable X and y says what is wrong."""
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match):
        load_data(_file_spec(path))


def test_preprocessing_encode_missing_columns(tmp_path):
    """Check that encoding rows without some input columns names them."""
    prep = load_data(_file_spec(_write_csv(tmp_path, _table()), target="label")).preprocessing
    with pytest.raises(DataError, match=r"missing columns: 'city', 'member'"):
        prep.encode(pd.DataFrame({"size": [1.0], "count": [2]}))
    with pytest.raises(DataError, match=r"2-D array with 4 columns"):
        prep.encode(np.zeros(4))


def test_preprocessing_encode_text_in_numeric_column(tmp_path):
    """Check that a non-numeric string in a numeric column names the column."""
    prep = load_data(_file_spec(_write_csv(tmp_path, _table()), target="label")).preprocessing
    rows = pd.DataFrame({"size": ["big"], "count": [2], "city": ["oslo"], "member": [True]})
    with pytest.raises(DataError, match=r"Column 'size' must be numeric .* 'big'"):
        prep.encode(rows)


def test_preprocessing_encode_nan_without_fill_value(tmp_path):
    """Check that NaN cannot be encoded when training did not impute."""
    prep = load_data(_file_spec(_write_csv(tmp_path, _table()), target="label")).preprocessing
    rows = pd.DataFrame({"size": [np.nan], "count": [2], "city": ["oslo"], "member": [True]})
    with pytest.raises(DataError, match=r"Missing values \(NaN\) in the rows to encode: 'size' \(1\)"):
        prep.encode(rows)


def test_preprocessing_decode_labels_errors():
    """Check that decode_labels rejects regression and out-of-range indices."""
    with pytest.raises(DataError, match=r"needs a classification Preprocessing"):
        load_data(DataSpec(dataset="diabetes")).preprocessing.decode_labels(np.array([0]))
    with pytest.raises(DataError, match=r"ints in the range \[0, 2\]"):
        load_data(DataSpec(dataset="wine")).preprocessing.decode_labels(np.array([3]))


def test_preprocessing_from_dict_rejects_unknown_and_missing_keys():
    """Check that Preprocessing.from_dict rejects unknown keys and names missing ones."""
    prep = load_data(DataSpec(dataset="wine")).preprocessing
    with pytest.raises(DataError, match=r"Unknown key 'colour' in \[preprocessing\]"):
        Preprocessing.from_dict({**prep.to_dict(), "colour": 1})
    with pytest.raises(DataError, match=r"missing keys: mean"):
        Preprocessing.from_dict({k: v for k, v in prep.to_dict().items() if k != "mean"})


def test_load_data_says_a_directory_is_a_directory(tmp_path):
    """Check that a folder named like a CSV file is called a directory, not missing."""
    (tmp_path / "x.csv").mkdir()
    with pytest.raises(DataError, match=r"Data file .*x\.csv' is a directory, not a file"):
        load_data(_file_spec(tmp_path / "x.csv"))


def test_load_data_rejects_duplicate_csv_column_names(tmp_path):
    """Check that repeated CSV column names are an error naming them, not silently renamed to 'a.1'."""
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,target\n1,2,3,0\n4,5,6,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dup\.csv' has duplicate column names: 'a'; every column needs its own name"):
        load_data(_file_spec(path))


def test_load_data_names_each_column_beyond_float32(tmp_path):
    """Check that values float32 cannot hold (1e308) are named per column with their counts, even with impute."""
    frame = _table()
    frame["count"] = frame["count"].astype(float)
    frame.loc[[3, 4], "size"] = 1e308
    frame.loc[7, "count"] = -1e39
    with pytest.raises(
        DataError, match=r"Values beyond float32's range \(\|value\| > 3\.4e\+38\) in .*: 'size' \(2\), 'count' \(1\)"
    ):
        load_data(_file_spec(_write_csv(tmp_path, frame), target="label", impute="mean"))


def test_load_data_rejects_a_regression_target_beyond_float32(tmp_path):
    """Check that a regression target float32 cannot hold is named, not trained into NaN."""
    frame = pd.DataFrame({"x": np.arange(30.0) % 7, "target": np.linspace(0, 1, 30)})
    frame.loc[0, "target"] = 1e308
    with pytest.raises(DataError, match=r"Target 'target' in .* has 1 values beyond float32's range"):
        load_data(_file_spec(_write_csv(tmp_path, frame), task="regression"))
