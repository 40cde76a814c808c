"""Tests of the study controller: totals, resume, baselines, compatibility, failures and divergence."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.config import ConfigError, DataSpec
from archsearch.controller import SearchError, open_search_study, run_search
from archsearch.storage import finished_count, keys

from .conftest import FinishedSearch, small_config

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

TRIAL_ATTRS = {
    "widths",
    "dropouts",
    "activation",
    "depth",
    "total_units",
    "n_params",
    "layer_shape",
    "seed",
    "device",
    "epochs_run",
    "best_epoch",
    "train_seconds",
    "val_accuracy",
    "test_accuracy",
    "train_accuracy",
}


@pytest.mark.timeout(300)
def test_run_search_records_the_study_contract(digits_search: FinishedSearch) -> None:
    """Check that the study and each completed trial carry the attributes docs/STUDY_LAYOUT.md promises."""
    study = digits_search.study
    assert finished_count(study) == 8
    assert {"archsearch_config", "archsearch_version", "metric", "task", "data", "preprocessing"} <= set(
        study.user_attrs
    )
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    for trial in completed:
        assert TRIAL_ATTRS <= set(trial.user_attrs)
        assert keys.WEIGHTS in trial.user_attrs
        assert trial.user_attrs["depth"] == trial.params["n_layers"] == len(trial.user_attrs["widths"])
        # The objective value is the best epoch's validation accuracy, stored under the same name.
        assert trial.value == pytest.approx(trial.user_attrs["val_accuracy"])
    # Every trial reported a learning curve for the pruner and the dashboard.
    assert all(t.intermediate_values for t in study.trials if t.state != TrialState.FAIL)


@pytest.mark.timeout(300)
def test_run_search_enqueues_the_linear_baseline_first(digits_search: FinishedSearch) -> None:
    """Check that trial 0 is the 0-layer linear model, marked as the baseline."""
    first = digits_search.study.trials[0]
    assert first.params["n_layers"] == 0
    assert first.user_attrs["baseline"] == "linear"
    assert first.user_attrs["widths"] == []


@pytest.mark.timeout(300)
def test_run_search_resumes_until_the_total(tmp_path: Path) -> None:
    """Check that rerunning a study finishes only the remainder and keeps earlier trials intact."""
    config = small_config(tmp_path, study={"n_trials": 3}, train={"epochs": 3})
    first = run_search(config)
    before = {t.number: (t.params, t.value) for t in first.trials}
    second = run_search(config.replace(n_trials=5))
    assert finished_count(second) == 5
    assert {t.number: (t.params, t.value) for t in second.trials if t.number in before} == before
    # A rerun at the total starts nothing new.
    assert len(run_search(config.replace(n_trials=5)).trials) == len(second.trials)


@pytest.mark.timeout(300)
def test_run_search_user_baselines_are_tried(tmp_path: Path) -> None:
    """Check that the linear model, [space] baselines and the recipe baseline (without, then with the `pl`
    embedding of the default space) come first, in that order."""
    config = small_config(
        tmp_path, study={"n_trials": 5}, space={"baselines": [[64, 32]], "recipe_baseline": True}, train={"epochs": 2}
    )
    study = run_search(config)
    assert [t.user_attrs.get("baseline") for t in study.trials[:5]] == ["linear", "user", "recipe", "recipe", None]
    assert study.trials[1].user_attrs["widths"] == [64, 32]
    # The recipe's 3 x 256 moved into this space's 2 layers of at most 128 units; digits is classification.
    assert study.trials[2].user_attrs["widths"] == study.trials[3].user_attrs["widths"] == [128, 128]
    assert study.trials[2].params["label_smoothing"] == 0.1 and study.trials[2].params["normalization"] == "batch"
    assert (study.trials[2].params["embedding"], study.trials[3].params["embedding"]) == ("none", "pl")
    assert {k: v for k, v in study.trials[3].params.items() if k != "embedding_dim"} == (
        study.trials[2].params | {"embedding": "pl"}
    )


@pytest.mark.timeout(300)
def test_run_search_without_the_recipe_baseline_and_on_regression(tmp_path: Path) -> None:
    """Check that recipe_baseline = false leaves it out, and that a regression's recipe trial has no smoothing."""
    (tmp_path / "off").mkdir()
    (tmp_path / "reg").mkdir()
    config = small_config(
        tmp_path / "off", study={"n_trials": 1}, space={"recipe_baseline": False}, train={"epochs": 2}
    )
    # Only the linear model ran, and nothing else waits in the queue.
    assert [t.user_attrs.get("baseline") for t in run_search(config).trials] == ["linear"]
    regression = small_config(
        tmp_path / "reg",
        study={"n_trials": 2},
        data={"dataset": "diabetes"},
        space={"recipe_baseline": True},
        train={"epochs": 2},
    )
    recipe = run_search(regression).trials[1]
    assert recipe.user_attrs["baseline"] == "recipe" and "label_smoothing" not in recipe.params


@pytest.mark.timeout(300)
def test_run_search_refuses_an_incompatible_resume(tmp_path: Path) -> None:
    """Check that resuming with a changed space is an error naming the change, and nothing stored is lost."""
    config = small_config(tmp_path, study={"n_trials": 2}, train={"epochs": 2})
    study = run_search(config)
    changed = small_config(tmp_path, study={"n_trials": 4}, space={"width": [8, 64]}, train={"epochs": 2})
    with pytest.raises(ConfigError, match=r"was created with a different search: \[space\] width changed"):
        run_search(changed)
    assert finished_count(optuna.load_study(study_name="digits", storage=config.study.storage)) == 2
    assert len(study.trials) == 2


@pytest.mark.timeout(300)
def test_run_search_stops_after_consecutive_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that a search whose trials all fail stops with the last exception, each failure recorded."""
    import archsearch.trainers

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(archsearch.trainers, "train_mlp", out_of_memory)
    config = small_config(tmp_path, study={"n_trials": 5, "max_consecutive_failures": 2}, data={"dataset": "wine"})
    with pytest.raises(
        SearchError,
        match=r"after 2 failed trials in a row; the last \(trial 1\) failed with: RuntimeError: CUDA out of memory",
    ):
        run_search(config)
    study = optuna.load_study(study_name="digits", storage=config.study.storage)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 2 and all("out of memory" in t.user_attrs["fail_reason"] for t in failed)
    # The study stays resumable: the failures are recorded, nothing else changed.
    assert finished_count(study) == 0


def test_run_search_cuda_without_gpu_is_a_clear_error(tmp_path: Path) -> None:
    """Check that asking for CUDA on a machine without a GPU fails before any trial starts."""
    import archsearch.trainers

    if archsearch.trainers.cuda_device_count() > 0:
        pytest.skip("this machine has a GPU")
    config = small_config(tmp_path, train={"device": "cuda"})
    with pytest.raises(ConfigError, match=r"CUDA was asked for \(device 'cuda'\) but no GPU is visible"):
        run_search(config)


@pytest.mark.timeout(300)
def test_run_search_diverging_trials_are_pruned_with_a_reason(tmp_path: Path) -> None:
    """Check that a NaN loss ends a trial as pruned with the reason stored, and the search goes on."""
    config = small_config(
        tmp_path,
        study={"n_trials": 2},
        data={"dataset": "diabetes"},
        space={"layers": [1, 1], "lr": [1e6, 1e7], "optimizer": ["sgd"], "weight_decay": [0.0, 0.0]},
        train={"epochs": 3},
    )
    study = run_search(config)
    assert finished_count(study) == 2
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned and all("became" in t.user_attrs["pruned_reason"] for t in pruned)


@pytest.mark.timeout(300)
def test_run_search_regression_minimizes_rmse(tmp_path: Path) -> None:
    """Check that a regression dataset gets the rmse metric and a minimizing study."""
    config = small_config(tmp_path, study={"n_trials": 2}, data={"dataset": "diabetes"}, train={"epochs": 3})
    study = run_search(config)
    assert study.user_attrs["metric"] == "rmse"
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert study.best_value == pytest.approx(study.best_trial.user_attrs["val_rmse"])


@pytest.mark.timeout(300)
def test_run_search_keep_best_k_bounds_stored_weights(tmp_path: Path) -> None:
    """Check that keep_best_k leaves weight files only for the best k completed trials."""
    config = small_config(
        tmp_path, study={"n_trials": 4, "keep_best_k": 1}, space={"layers": [1, 1]}, train={"epochs": 2}
    )
    study = run_search(config)
    artifacts = tmp_path / "search_artifacts"
    kept = [
        t.number
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if (artifacts / t.user_attrs[keys.WEIGHTS]).exists()
    ]
    assert kept == [study.best_trial.number]


@pytest.mark.timeout(300)
def test_run_search_resume_stores_runtime_changes_and_new_baselines(tmp_path: Path) -> None:
    """Check that a resume keeps the new n_trials and sampler in the study (for later workers) and tries new baselines."""
    config = small_config(
        tmp_path, study={"n_trials": 2, "sampler": "tpe"}, space={"layers": [0, 2]}, train={"epochs": 2}
    )
    run_search(config)
    resumed = small_config(
        tmp_path,
        study={"n_trials": 4, "sampler": "random"},
        space={"layers": [0, 2], "baselines": [[24, 16]]},
        train={"epochs": 2},
    )
    study = run_search(resumed)
    stored = study.user_attrs["archsearch_config"]
    assert (stored["study"]["n_trials"], stored["study"]["sampler"]) == (4, "random")
    assert study.trials[2].user_attrs["widths"] == [24, 16] and study.trials[2].user_attrs["baseline"] == "user"


@pytest.mark.timeout(300)
def test_run_search_refuses_changed_epochs_on_resume(tmp_path: Path) -> None:
    """Check that a changed epoch budget is refused: old and new trials would not be comparable."""
    run_search(small_config(tmp_path, study={"n_trials": 1}, train={"epochs": 2}))
    with pytest.raises(ConfigError, match=r"\[train\] epochs \(stored 2, now 3\) changed"):
        run_search(small_config(tmp_path, study={"n_trials": 2}, train={"epochs": 3}))


def test_run_search_changed_seed_names_the_study_seed(tmp_path: Path) -> None:
    """Check that changing only [study] seed explains that the data split follows it."""
    from archsearch.controller import open_search_study

    open_search_study(small_config(tmp_path, study={"n_trials": 1, "seed": 0}))
    with pytest.raises(
        ConfigError,
        match=r"\[data\] seed \(stored 0, now 1\) changed \(\[data\] seed follows \[study\] seed unless \[data\] sets it\)",
    ):
        open_search_study(small_config(tmp_path, study={"n_trials": 1, "seed": 1}))


def test_a_study_made_with_the_old_test_fraction_says_what_to_restore(tmp_path: Path) -> None:
    """Check that a study stored with 20% test rows, resumed under today's 10% default, names both values."""
    from archsearch.controller import open_search_study

    old = small_config(tmp_path, study={"n_trials": 1}, data={"test_fraction": 0.2})
    stored = open_search_study(old).study.user_attrs
    assert DataSpec().test_fraction == 0.1
    with pytest.raises(ConfigError, match=r"\[data\] test_fraction \(stored 0\.2, now 0\.1\) changed"):
        open_search_study(small_config(tmp_path, study={"n_trials": 1}))
    # Nothing stored was lost, and naming the old fraction resumes it.
    assert open_search_study(old).study.user_attrs == stored


def test_open_search_study_refuses_a_foreign_study_with_trials(tmp_path: Path) -> None:
    """Check that a plain Optuna study of the same name, with trials, is not taken over."""
    from archsearch.controller import open_search_study

    url = f"sqlite:///{tmp_path}/search.db"
    foreign = optuna.create_study(study_name="digits", storage=url)
    foreign.add_trial(optuna.trial.create_trial(value=1.0))
    with pytest.raises(ConfigError, match=r"already holds trials but was not created by archsearch"):
        open_search_study(small_config(tmp_path))


def test_stored_config_masks_the_storage_password() -> None:
    """Check that the config kept in the study (shown by optuna-dashboard) has no storage password."""
    from archsearch.config import SearchConfig
    from archsearch.controller import stored_config

    config = SearchConfig.from_dict({"study": {"storage": "postgresql+psycopg://bob:s3cret@db/x"}})
    assert stored_config(config)["study"]["storage"] == "postgresql+psycopg://bob:***@db/x"


def test_run_search_bad_data_leaves_no_database(tmp_path: Path) -> None:
    """Check that a data error is raised before the study or its SQLite file is created."""
    from archsearch.trainers.data import DataError

    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    config = small_config(tmp_path, data={"path": str(rows), "dataset": None})
    with pytest.raises(DataError, match=r"Target column 'target' not found .*It has 2 columns: 'a', 'b'\."):
        run_search(config)
    assert not (tmp_path / "search.db").exists()


def _many_categories_csv(path: Path, n: int) -> Path:
    """A CSV whose `city` column has `n` distinct long values, one a row: its preprocessing outgrows 64 kB."""
    rows = [f"city-with-a-rather-long-name-{i:05d},{i % 7},{i % 2}" for i in range(n)]
    path.write_text("city,x,target\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "server", ["sqlite", *(pytest.param(url, marks=pytest.mark.services) for url in ("postgres_url", "mysql_url"))]
)
def test_open_search_study_stores_preprocessing_longer_than_a_mariadb_column(
    server: str, tmp_path: Path, request: pytest.FixtureRequest, unique_name: str
) -> None:
    """Check that a study whose preprocessing JSON exceeds MariaDB's 65,535-byte TEXT column is created on every
    backend, and reads back whole (it is split into parts; before, MariaDB refused it and left a half-made study)."""
    import json

    from archsearch.storage import make_storage, stored_value

    url = f"sqlite:///{tmp_path}/s.db" if server == "sqlite" else request.getfixturevalue(server)
    config = small_config(
        tmp_path,
        study={"name": unique_name, "storage": url},
        data={"dataset": None, "path": str(_many_categories_csv(tmp_path / "cities.csv", 2000))},
    )
    opened = open_search_study(config)
    try:
        stored = stored_value(
            optuna.load_study(study_name=unique_name, storage=make_storage(url)).user_attrs, "preprocessing"
        )
        assert stored == opened.data.preprocessing.to_dict()
        assert len(json.dumps(stored)) > 65_535  # the case this test is about
    finally:
        optuna.delete_study(study_name=unique_name, storage=make_storage(url))


def test_open_search_study_that_fails_to_initialise_leaves_no_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that a new study whose initialisation fails is deleted again (no study with attributes and no
    config), and that the same config then creates it."""
    import archsearch.controller
    from archsearch.storage import make_storage, study_names

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("the database went away")

    config = small_config(tmp_path)
    monkeypatch.setattr(archsearch.controller, "_enqueue_baselines", broken)
    with pytest.raises(RuntimeError, match="the database went away"):
        open_search_study(config)
    assert study_names(make_storage(config.study.storage)) == []
    monkeypatch.undo()
    study = open_search_study(config).study
    assert keys.CONFIG in study.user_attrs and study.get_trials(states=(TrialState.WAITING,))


def _rows_with_an_index(folder: Path) -> Path:
    """A CSV as R's write.csv leaves it: a `rownames` column before the features."""
    path = folder / "rows.csv"
    lines = ["rownames,x,y,target"] + [f"{i + 1},{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.timeout(120)
def test_a_new_study_leaves_out_row_identifiers_and_says_so(tmp_path: Path) -> None:
    """Check that a row-index column is not trained on, one line names it, and the study records it."""
    import io

    config = small_config(
        tmp_path,
        study={"n_trials": 1},
        data={"dataset": None, "path": str(_rows_with_an_index(tmp_path))},
        space={"layers": [0, 0]},
        train={"epochs": 1},
    )
    stream = io.StringIO()
    study = run_search(config, quiet=False, stream=stream)
    assert study.user_attrs[keys.DROPPED_COLUMNS] == {"rownames": "named like a row identifier"}
    assert study.user_attrs[keys.PREPROCESSING]["columns"] == ["x", "y"]
    lines = [line for line in stream.getvalue().splitlines() if "rownames" in line]
    assert lines == [
        "Left out 1 column of 'rows.csv': 'rownames' (named like a row identifier); [data] keep_ids = true trains on it."
    ]


def test_a_study_stored_before_the_id_rule_keeps_its_columns(tmp_path: Path) -> None:
    """Check that a study whose stored config predates keep_ids keeps training on its row-index column: its
    workers read it with keep_ids = true, and a resume under today's default says what to set."""
    from archsearch.config import SearchConfig
    from archsearch.controller import open_search_study, stored_config

    data = {"dataset": None, "path": str(_rows_with_an_index(tmp_path))}
    old = small_config(tmp_path, data={**data, "keep_ids": True})
    study = open_search_study(old).study
    legacy = stored_config(old)
    del legacy["data"]["keep_ids"]  # as archsearch stored it before the key existed
    study.set_user_attr(keys.CONFIG, legacy)
    assert SearchConfig.from_stored(legacy).data.keep_ids is True
    assert study.user_attrs[keys.PREPROCESSING]["columns"] == ["rownames", "x", "y"]
    with pytest.raises(
        ConfigError,
        match=r"columns removed \['rownames'\].*\[data\] left out 'rownames' \(named like a row identifier\); "
        r"set keep_ids = true in \[data\] to resume this study",
    ):
        open_search_study(small_config(tmp_path, data=data))
    assert open_search_study(small_config(tmp_path, data={**data, "keep_ids": True})).data.n_features == 3


def test_a_study_stored_before_the_id_rule_without_ids_resumes_as_it_is(tmp_path: Path) -> None:
    """Check that a study stored before keep_ids existed, on data without row identifiers, resumes unchanged."""
    from archsearch.controller import open_search_study, stored_config

    config = small_config(tmp_path)
    study = open_search_study(config).study
    legacy = stored_config(config)
    del legacy["data"]["keep_ids"]
    study.set_user_attr(keys.CONFIG, legacy)
    assert open_search_study(config).study.user_attrs[keys.DATA]["n_features"] == 64


def test_the_linear_baseline_is_scikit_learns_default_logistic_regression_where_lbfgs_fits_it():
    """Check the L2 of C = 1 (1 / n_train, clamped to the space's weight-decay range) and no label smoothing."""
    from archsearch.controller import _linear_baseline
    from archsearch.spaces import MLPSpace

    params = _linear_baseline(MLPSpace(), "lbfgs", 2880)
    assert params == {"n_layers": 0, "use_weight_decay": True, "weight_decay": 1 / 2880, "label_smoothing": 0.0}
    assert _linear_baseline(MLPSpace(), "lbfgs", 300)["weight_decay"] == 1e-3  # the space's upper end
    assert _linear_baseline(MLPSpace(weight_decay=(1e-5, 1e-4)), "lbfgs", 2880)["weight_decay"] == 1e-4
    # Trained by its optimizer, or in a space without weight decay, the sampler draws the rest as before.
    assert _linear_baseline(MLPSpace(), "optimizer", 2880) == {"n_layers": 0}
    assert _linear_baseline(MLPSpace(weight_decay=(0.0, 0.0)), "lbfgs", 2880) == {"n_layers": 0}
