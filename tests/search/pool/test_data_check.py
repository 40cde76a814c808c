"""Tests that a study refuses data that changed under it, and that export explains weights that do not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import sqlalchemy

from archsearch.config import ConfigError, SearchConfig
from archsearch.controller import open_search_study, run_search
from archsearch.export import ExportError, export_best
from archsearch.pool import WorkerSlot, run_worker
from archsearch.storage import default_artifact_dir, keys

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


def _write_rows(path: Path, rows: int = 150, classes: int = 3, scale: float = 1.0) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=rows) * scale, "b": rng.normal(size=rows) * scale})
    frame["label"] = np.arange(rows) % classes
    frame.to_csv(path, index=False)


def _config(tmp_path: Path, **study: object) -> SearchConfig:
    return SearchConfig.from_dict(
        {
            "study": {"name": "rows", "storage": f"sqlite:///{tmp_path}/s.db", "n_trials": 2, **study},
            "data": {"path": str(tmp_path / "rows.csv"), "target": "label"},
            "space": {"layers": [0, 1], "width": [4, 8], "batch_size": [32]},
            "train": {"epochs": 1, "patience": 1},
        }
    )


def test_resume_with_fewer_rows_and_classes_is_refused(tmp_path: Path) -> None:
    """Check that data cut to 100 rows and 2 of 3 classes is refused on resume, naming rows and classes."""
    _write_rows(tmp_path / "rows.csv")
    study = open_search_study(_config(tmp_path)).study
    assert study.user_attrs[keys.FINGERPRINT]["rows"] == 150
    _write_rows(tmp_path / "rows.csv", rows=100, classes=2)
    with pytest.raises(
        ConfigError,
        match=r"The data of study 'rows' in 'sqlite:///.*' changed since the study was created: rows 150 -> 100; classes \[0, 1, 2\] -> \[0, 1\]\.",
    ):
        open_search_study(_config(tmp_path))


def test_resume_with_rescaled_values_is_refused(tmp_path: Path) -> None:
    """Check that the same rows, columns and classes with rescaled values are refused as changed values."""
    _write_rows(tmp_path / "rows.csv")
    open_search_study(_config(tmp_path))
    _write_rows(tmp_path / "rows.csv", scale=10.0)
    with pytest.raises(
        ConfigError, match=r"changed since the study was created: values \(same rows, columns and classes\)\."
    ):
        open_search_study(_config(tmp_path))


def test_joining_worker_with_other_data_is_refused(tmp_path: Path) -> None:
    """Check that a worker whose copy of the data differs stops before training, naming the changed columns."""
    _write_rows(tmp_path / "rows.csv")
    config = _config(tmp_path)
    open_search_study(config)
    frame = pd.read_csv(tmp_path / "rows.csv").rename(columns={"b": "c"})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(
        ConfigError, match=r"changed since the study was created: columns removed \['b'\], added \['c'\]\."
    ):
        run_worker(config.study.storage, "rows", WorkerSlot(index=0, device="cpu", gpu=None, threads=1))
    assert not optuna.load_study(study_name="rows", storage=config.study.storage).get_trials(
        states=(optuna.trial.TrialState.RUNNING,)
    )


def test_study_without_fingerprint_is_accepted_and_fingerprinted_on_resume(tmp_path: Path) -> None:
    """Check that an older study (no fingerprint) resumes with the same data, stores a fingerprint then, and is checked by its sizes."""
    _write_rows(tmp_path / "rows.csv")
    config = _config(tmp_path)
    open_search_study(config)
    engine = sqlalchemy.create_engine(config.study.storage)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("DELETE FROM study_user_attributes WHERE key = :key"), {"key": keys.FINGERPRINT}
        )
    engine.dispose()
    _write_rows(tmp_path / "rows.csv", rows=120)
    # Without a fingerprint the stored sizes still tell that rows went missing.
    with pytest.raises(ConfigError, match=r"rows 150 -> 120"):
        open_search_study(config)
    _write_rows(tmp_path / "rows.csv")
    study = open_search_study(config).study
    assert study.user_attrs[keys.FINGERPRINT]["rows"] == 150


@pytest.mark.timeout(300)
def test_export_names_the_trial_whose_weights_do_not_fit_or_cannot_be_read(tmp_path: Path) -> None:
    """Check that export says which trial and why for weights of the wrong shape and for a corrupt weights file."""
    _write_rows(tmp_path / "rows.csv")
    config = _config(tmp_path, n_trials=1)
    study = run_search(config, workers=1)
    trial = study.best_trial
    # A study whose classes no longer match the trained network (what a resume on changed data used to leave),
    # exported with the search's own weights: a refit would train anew on the data and meet no stored weights.
    preprocessing = dict(study.user_attrs["preprocessing"], classes=[0, 1])
    study.set_user_attr("preprocessing", preprocessing)
    with pytest.raises(
        ExportError,
        match=rf"The stored weights of trial {trial.number} do not fit study 'rows': the output layer is .* -> 3 where the study's architecture has .* -> 2",
    ):
        export_best(config.study.storage, "rows", tmp_path / "out", refit=False)
    artifact = default_artifact_dir(config.study.storage) / trial.user_attrs[keys.WEIGHTS]
    artifact.write_bytes(b"garbage, not a torch file")
    with pytest.raises(
        ExportError,
        match=rf"The stored weights of trial {trial.number} cannot be read: '.*' is not a readable weights file \(corrupt or truncated\)",
    ):
        export_best(config.study.storage, "rows", tmp_path / "out", refit=False)


@pytest.mark.timeout(300)
def test_a_no_refit_export_without_the_data_skips_the_default_greedy_ensemble(tmp_path: Path) -> None:
    """Check that a --no-refit export on a machine without the search's data still ships the stored best trial
    (the study's default greedy ensemble is skipped, and the metadata says why), while asking for the greedy
    ensemble there fails naming the file."""
    import json

    from archsearch.trainers import DataError

    _write_rows(tmp_path / "rows.csv")
    config = _config(tmp_path, n_trials=3)
    study = run_search(config, workers=1)
    (tmp_path / "rows.csv").unlink()
    out = export_best(config.study.storage, "rows", tmp_path / "out", refit=False)
    meta = json.loads((out / "architecture.json").read_text())["metadata"]
    assert meta["trial"] == study.best_trial.number and "ensemble" not in meta
    assert meta["greedy_ensemble"]["members"] == 1
    assert meta["greedy_ensemble"]["skipped"].startswith("the search's data cannot be read here (Data file ")
    with pytest.raises(DataError, match=r"rows\.csv"):
        export_best(config.study.storage, "rows", tmp_path / "again", refit=False, greedy_ensemble=True)
