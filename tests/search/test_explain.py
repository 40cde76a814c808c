"""Tests for archsearch.explain and `archsearch explain`: on an exported folder with the data given, and on a
study's best trial through the CLI; every bad input is one line naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import archsearch
from archsearch.cli import main
from archsearch.explanations import ExplainError
from archsearch.spaces import NetSpec
from archsearch.storage import keys, make_storage, open_study, stored_value
from archsearch.trainers import TrainSettings, export_model, train_mlp
from archsearch.trainers.data import DataSpec, PreparedData, load_data

from .conftest import small_config


@pytest.fixture(scope="module")
def folder_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PreparedData]:
    """A network on a table whose label is `a` > 0 for colour red and `a` > 1 otherwise; `b` is noise."""
    folder = tmp_path_factory.mktemp("explain-api")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(size=400), "b": rng.normal(size=400), "colour": rng.choice(["red", "blue"], 400)}
    )
    frame["label"] = np.where(frame["a"] > np.where(frame["colour"] == "red", 0.0, 1.0), "up", "down")
    frame.to_csv(folder / "table.csv", index=False)
    data = load_data(DataSpec(dataset=None, path=str(folder / "table.csv"), target="label"))
    net = NetSpec((16,), (0.0,), "relu")
    result = train_mlp(net, data, TrainSettings(batch_size=32, epochs=30, lr=3e-3))
    model = export_model(
        folder / "model",
        net=net,
        state_dict=result.state_dict,
        preprocessing=data.preprocessing,
        metadata={"metric": "accuracy", "study": "table"},
    )
    return model, data


def test_explain_writes_json_and_summaries(folder_and_data: tuple[Path, PreparedData], tmp_path: Path) -> None:
    model, data = folder_and_data
    found = archsearch.explain(
        model, data=data, out=tmp_path / "e.json", allow_change=["a", "b"], progress=lambda _: None
    )
    written = json.loads((tmp_path / "e.json").read_text())
    assert written == found.result and written["rows"] == {"split": "test", "n": len(data.y_test)}
    importance = written["attributions"]["integrated_gradients"]["importance"]
    assert max(importance, key=importance.get) == "a"
    assert set(written["prototypes"]) == {"down", "up"}
    assert written["prototypes"]["up"]["nearest_training_row"]["label"] == "up"
    counterfactual = written["counterfactual"]
    assert counterfactual["row_index"] == 0 and counterfactual["allowed"] == ["a", "b"]
    assert counterfactual["found"] and counterfactual["verified"] and set(counterfactual["changes"]) <= {"a", "b"}
    lines = found.summary_lines()
    assert lines[0].startswith("Integrated Gradients, top columns") and f"n = {len(data.y_test)} test rows" in lines[0]
    assert any(line.startswith("Counterfactual for test row 0") for line in lines)


def test_explain_counterfactual_of_a_given_row(folder_and_data: tuple[Path, PreparedData]) -> None:
    model, data = folder_and_data
    found = archsearch.explain(
        model,
        data=data,
        max_rows=30,
        prototypes=False,
        row={"a": -1.0, "b": 0.0, "colour": "red"},
        target_class="up",
        progress=lambda _: None,
    )
    counterfactual = found.result["counterfactual"]
    assert counterfactual["from_class"] == "down" and counterfactual["to_class"] == "up" and counterfactual["verified"]
    assert "prototypes" not in found.result and found.result["rows"]["n"] == 30


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"allow_change": ["a", "colur"]},
            r"--allow-change names 'colur', not a column of the data .* Did you mean 'colour'\?",
        ),
        ({"row": {"a": 1.0, "b": 0.0, "colour": "red", "d": 2}}, r"not in the data's schema: 'd'"),
        ({"row": {"a": 1.0, "b": 0.0, "colour": "green"}}, r"'colour' is 'green', not one of the categories"),
        ({"row": 10_000}, r"--row must be a test row's index in \[0, "),
        ({"max_rows": 1}, r"--max-rows must be an int >= 2. Got 1 instead"),
        ({"threads": 0}, r"--threads must be an int >= 1. Got 0 instead"),
        (
            {"target_class": "sideways"},
            r"--target-class names class 'sideways', which does not exist; the classes are 'down', 'up'",
        ),
    ],
)
def test_explain_bad_input_is_one_line(
    folder_and_data: tuple[Path, PreparedData], arguments: dict, message: str
) -> None:
    model, data = folder_and_data
    with pytest.raises(ExplainError, match=message):
        settings = {"max_rows": 20, "prototypes": False, "progress": lambda _: None} | arguments
        archsearch.explain(model, data=data, **settings)


def test_explain_without_data_or_model_says_what_it_needs(folder_and_data: tuple[Path, PreparedData]) -> None:
    model, _ = folder_and_data
    with pytest.raises(ExplainError, match=r"needs the study's data for its test rows: give --storage"):
        archsearch.explain(model, progress=lambda _: None)
    with pytest.raises(ExplainError, match=r"needs a model folder \(--model\) or a study"):
        archsearch.explain(progress=lambda _: None)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cli_explains_a_studys_best_trial_and_stores_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from archsearch.controller import run_search

    config = small_config(
        tmp_path, study={"name": "wine", "n_trials": 2}, data={"dataset": "wine"}, train={"epochs": 6, "patience": 3}
    )
    run_search(config, workers=1, quiet=True)
    url, out = config.study.storage, tmp_path / "explanation.json"
    argv = ["explain", "--storage", url, "--study", "wine", "--out", str(out), "--max-rows", "12"]
    assert main(argv + ["--allow-change", "alcohol,magnesium"]) == 0
    printed = capsys.readouterr().out
    assert "Integrated Gradients, top columns (mean |attribution|, n = 12 test rows)" in printed
    assert "Prototype class_0" in printed or "Prototype 0" in printed
    stored = stored_value(open_study(make_storage(url), "wine").user_attrs, keys.EXPLANATION)
    assert stored == json.loads(out.read_text())
    assert main(argv + ["--allow-change", "alcohl"]) == 2
    assert "error: --allow-change names 'alcohl', not a column of the data" in capsys.readouterr().err
    assert main(argv + ["--target-class", "9"]) == 2
    assert "which does not exist" in capsys.readouterr().err


def test_explain_a_regression_model(tmp_path: Path) -> None:
    """Regression: attributions of the prediction, prototypes of two target values and a counterfactual that
    moves the prediction by `delta`, checked by the exported program."""
    data = load_data(DataSpec(dataset="diabetes"))
    net = NetSpec((16,), (0.0,), "relu")
    result = train_mlp(net, data, TrainSettings(batch_size=32, epochs=20, lr=3e-3, metric="rmse"))
    model = export_model(
        tmp_path / "model",
        net=net,
        state_dict=result.state_dict,
        preprocessing=data.preprocessing,
        metadata={"metric": "rmse"},
    )
    found = archsearch.explain(model, data=data, max_rows=40, delta=20.0, progress=lambda _: None).result
    assert (
        found["attributions"]["permutation"]["metric"] == "rmse"
        and "per_class" not in found["attributions"]["integrated_gradients"]
    )
    assert len(found["prototypes"]) == 2 and all(p["inside_training_range"] for p in found["prototypes"].values())
    counterfactual = found["counterfactual"]
    assert counterfactual["goal"] == pytest.approx(counterfactual["prediction"] + 20.0)
    assert counterfactual["found"] and counterfactual["verified"]
    with pytest.raises(ExplainError, match=r"--target-class applies to classification models"):
        archsearch.explain(model, data=data, max_rows=10, target_class="1", progress=lambda _: None)
