"""Tests of weights stored as Optuna artifacts, and of keeping only the best k."""

from __future__ import annotations

from pathlib import Path

import optuna

from archsearch.storage import (
    download_weights,
    drop_weights_beyond_best,
    keys,
    make_storage,
    open_artifact_store,
    upload_weights,
)


def _study_with_weights(tmp_path: Path, values: list[float], direction: str):
    storage = make_storage(f"sqlite:///{tmp_path}/a.db")
    store = open_artifact_store(tmp_path / "artifacts")
    study = optuna.create_study(storage=storage, direction=direction)
    for i, value in enumerate(values):
        trial = study.ask()
        path = tmp_path / f"w{i}.pt"
        path.write_bytes(f"weights {i}".encode())
        upload_weights(store, path, trial, storage)
        study.tell(trial, value)
    return study, store


def test_upload_and_download_weights_round_trip(tmp_path: Path) -> None:
    """Check that uploaded weights come back byte for byte and are named on the trial."""
    study, store = _study_with_weights(tmp_path, [0.5], "maximize")
    artifact_id = study.trials[0].user_attrs[keys.WEIGHTS]
    out = tmp_path / "out"
    out.mkdir()
    assert download_weights(store, artifact_id, out).read_bytes() == b"weights 0"


def test_drop_weights_beyond_best_keeps_the_best_k_for_each_direction(tmp_path: Path) -> None:
    """Check that keep_best_k removes the weight files of all but the best k trials, by direction."""
    for direction, kept in (("maximize", {1, 3}), ("minimize", {0, 2})):
        folder = tmp_path / direction
        folder.mkdir()
        study, store = _study_with_weights(folder, [0.1, 0.9, 0.2, 0.8], direction)
        dropped = drop_weights_beyond_best(study, store, 2)
        assert set(dropped) == {0, 1, 2, 3} - kept
        remaining = {t.number for t in study.trials if (folder / "artifacts" / t.user_attrs[keys.WEIGHTS]).exists()}
        assert remaining == kept
        # A second call finds nothing more to drop.
        assert drop_weights_beyond_best(study, store, 2) == []


def test_keep_best_k_keeps_the_whole_front_of_a_multi_objective_study(tmp_path: Path) -> None:
    """Check that a multi-objective study keeps the weights of its front too: export --max-params may pick any."""
    storage = make_storage(f"sqlite:///{tmp_path}/m.db")
    store = open_artifact_store(tmp_path / "artifacts")
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr(keys.CONFIG, {"study": {"objectives": ["accuracy", "params"]}})
    # (accuracy, params): 0 and 2 are on the front, 1 and 3 are dominated; the best by accuracy is 2.
    for i, (value, params) in enumerate([(0.80, 100), (0.70, 5000), (0.95, 9000), (0.79, 200)]):
        trial = study.ask()
        trial.set_user_attr(keys.SIZE_PARAMS, params)
        path = tmp_path / f"w{i}.pt"
        path.write_bytes(b"w")
        upload_weights(store, path, trial, storage)
        study.tell(trial, [value, params])
    assert set(drop_weights_beyond_best(study, store, 1)) == {1, 3}
