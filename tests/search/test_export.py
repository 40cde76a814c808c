"""Tests of exporting a trial: the end-to-end digits check, the default refit and every refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from archsearch.export import ExportError, export_best, load_model
from archsearch.storage import StorageError
from archsearch.trainers.data import load_data

from .conftest import FinishedSearch

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

# Runs with nothing but torch and numpy: the exported program must not need archsearch.
STANDALONE = """
import sys, numpy as np, torch
program = torch.export.load(sys.argv[1]).module()
rows = np.load(sys.argv[2])
logits = program(torch.from_numpy(rows["x"]))
accuracy = float((logits.argmax(dim=1).numpy() == rows["y"]).mean())
assert "archsearch" not in sys.modules
print(accuracy)
"""


@pytest.mark.timeout(600)
def test_export_best_end_to_end_standalone(digits_search: FinishedSearch, tmp_path: Path) -> None:
    """Check the end-to-end run: 8 trials, val accuracy >= 0.95, linear baseline included, and
    model.pt2 reproducing the test accuracy the export recorded in a fresh process without archsearch."""
    study = digits_search.study
    assert study.best_value >= 0.95
    assert any(t.params.get("n_layers") == 0 for t in study.trials)
    out = export_best(digits_search.url, "digits", tmp_path / "model")
    assert {p.name for p in out.iterdir()} >= {"architecture.json", "model.pt", "model.pt2"}
    data = load_data(digits_search.config.data)
    encoded = data.preprocessing.encode(data.raw_test)
    np.savez(tmp_path / "test.npz", x=encoded, y=data.y_test)
    run = subprocess.run(
        [sys.executable, "-c", STANDALONE, str(out / "model.pt2"), str(tmp_path / "test.npz")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    recorded = json.loads((out / "architecture.json").read_text())["metadata"]["test_metrics"]["test_accuracy"]
    assert abs(float(run.stdout.strip()) - recorded) <= 0.005


@pytest.mark.timeout(300)
def test_load_model_predicts_raw_rows(digits_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that the predictor takes raw rows and returns labels whose accuracy matches the stored trial's."""
    export_best(digits_search.url, "digits", tmp_path / "model", refit=False)
    model = load_model(tmp_path / "model")
    data = load_data(digits_search.config.data)
    labels = model.predict(data.raw_test)
    expected = data.preprocessing.decode_labels(data.y_test)
    accuracy = float(np.mean(labels == expected))
    # Float differences between the trainer's evaluation and the exported path may flip one row, no more.
    one_row = 1 / len(expected)
    assert accuracy == pytest.approx(digits_search.exported_trial.user_attrs["test_accuracy"], abs=one_row + 1e-9)
    proba = model.predict_proba(data.raw_test[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    meta = json.loads((tmp_path / "model" / "architecture.json").read_text())
    assert meta["metadata"]["study"] == "digits"
    assert meta["metadata"]["trial"] == digits_search.exported_trial.number


@pytest.mark.timeout(300)
def test_export_best_refits_on_train_and_validation_by_default(digits_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that a single-network export trains the chosen architecture again and records the refit's test metrics."""
    out = export_best(digits_search.url, "digits", tmp_path / "model", greedy_ensemble=False)
    meta = json.loads((out / "architecture.json").read_text())["metadata"]
    sizes = digits_search.study.user_attrs["data"]
    assert meta["refit"] is True
    assert meta["training_rows"] == {
        "splits": "train + validation",
        "n_rows": sizes["n_train"] + sizes["n_val"],
        "n_test_rows": sizes["n_test"],
    }
    assert meta["test_metrics"]["test_accuracy"] > 0.8


@pytest.mark.timeout(300)
def test_export_best_refuses_unfinished_trials(digits_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that pruned/failed trials and unknown trial numbers are refused with a way forward."""
    storage = optuna.storages.RDBStorage(digits_search.url)
    study = optuna.load_study(study_name="digits", storage=storage)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    if pruned:
        with pytest.raises(
            ExportError, match=rf"Trial {pruned[0].number} of study 'digits' is PRUNED.*only COMPLETE trials"
        ):
            export_best(digits_search.url, "digits", tmp_path / "m", trial=pruned[0].number)
    with pytest.raises(
        ExportError,
        match=r"The 'trial' parameter must be a trial number of study 'digits' \(0 to \d+\)\. Got 999 instead\.",
    ):
        export_best(digits_search.url, "digits", tmp_path / "m", trial=999)
    with pytest.raises(StorageError, match=r"No study named 'nope'.*Studies there: 'digits'"):
        export_best(digits_search.url, "nope", tmp_path / "m")


@pytest.mark.timeout(300)
def test_export_best_refuses_failed_trial_and_foreign_study(tmp_path: Path) -> None:
    """Check the errors for a FAIL trial and for a study archsearch did not create."""
    from archsearch.config import SearchConfig
    from archsearch.controller import open_search_study

    url = f"sqlite:///{tmp_path}/a.db"
    opened = open_search_study(SearchConfig.from_dict({"study": {"name": "s", "storage": url}}))
    trial = opened.study.ask()
    trial.set_user_attr("fail_reason", "RuntimeError: CUDA out of memory")
    opened.study.tell(trial, state=TrialState.FAIL)
    with pytest.raises(ExportError, match=r"is FAIL \(RuntimeError: CUDA out of memory\)"):
        export_best(url, "s", tmp_path / "m", trial=trial.number)
    with pytest.raises(ExportError, match="has no completed trial to export yet"):
        export_best(url, "s", tmp_path / "m")
    optuna.create_study(study_name="plain", storage=url)
    with pytest.raises(ExportError, match="was not created by archsearch"):
        export_best(url, "plain", tmp_path / "m")


@pytest.mark.timeout(300)
def test_export_best_missing_weights_suggests_refit(digits_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that weights missing from the artifact folder are explained, pointing at a refit."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match=r"are not in .*empty.*Export without --no-refit"):
        export_best(digits_search.url, "digits", tmp_path / "m", refit=False, artifacts=tmp_path / "empty")


@pytest.mark.timeout(300)
def test_export_best_refuses_a_missing_artifacts_folder_and_creates_none(
    digits_search: FinishedSearch, tmp_path: Path
) -> None:
    """Check that a mistyped --artifacts folder is refused naming it, and not created empty (the export then
    skipped the greedy ensemble without a word)."""
    with pytest.raises(
        ExportError,
        match=r"The 'artifacts' parameter of export_best \(--artifacts\) must be the folder the search stored its "
        r"weights in\. Got '.*typo' instead, which does not exist\.",
    ):
        export_best(digits_search.url, "digits", tmp_path / "m", artifacts=tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


@pytest.mark.timeout(300)
def test_export_onto_an_existing_file_is_one_clear_error(
    digits_search: FinishedSearch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that --out naming an existing file is refused before any work, naming the parameter (it was a bare
    "[Errno 17] File exists")."""
    from archsearch.cli import main

    (tmp_path / "model").write_text("not a folder", encoding="utf-8")
    message = r"The 'out' parameter of export_best \(--out\) must be a folder to write \(created when missing\)\. Got '.*model' instead, which is a file\."
    with pytest.raises(ExportError, match=message):
        export_best(digits_search.url, "digits", tmp_path / "model")
    assert main(["export", "--storage", digits_search.url, "--study", "digits", "--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "Errno" not in err and "which is a file" in err


@pytest.mark.timeout(300)
def test_greedy_ensemble_warns_of_candidates_with_unreadable_weights(
    digits_search: FinishedSearch, tmp_path: Path
) -> None:
    """Check that stored trials whose weights cannot be read are left out of the greedy ensemble with a warning
    naming how many and which (they were dropped without a word), and that the metadata lists them."""
    import shutil

    from archsearch.storage import default_artifact_dir, keys

    artifacts = tmp_path / "artifacts"
    shutil.copytree(default_artifact_dir(digits_search.url), artifacts)
    study = digits_search.study
    best = digits_search.exported_trial.number
    others = [
        t for t in study.get_trials(states=(TrialState.COMPLETE,)) if t.number != best and keys.WEIGHTS in t.user_attrs
    ]
    (artifacts / others[0].user_attrs[keys.WEIGHTS]).unlink()
    with pytest.warns(
        UserWarning,
        match=rf"The greedy ensemble left out 1 of {len(others) + 1} candidate trials whose stored weights cannot be "
        rf"read: trial {others[0].number} \(missing from '.*artifacts', or corrupt\)",
    ):
        out = export_best(
            digits_search.url, "digits", tmp_path / "g", greedy_ensemble=True, refit=False, artifacts=artifacts
        )
    greedy = json.loads((out / "architecture.json").read_text())["metadata"]["greedy_ensemble"]
    assert greedy["unreadable_trials"] == [others[0].number] and greedy["candidates"] == len(others)


@pytest.mark.timeout(300)
def test_export_best_refit_reports_only_unseen_test_metrics(digits_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that a refit export records no metric of the shipped model measured on its training rows."""
    out = export_best(digits_search.url, "digits", tmp_path / "model")
    shipped = json.loads((out / "architecture.json").read_text())["metadata"]["test_metrics"]
    assert shipped and all(k.startswith("test_") for k in shipped)


def test_pick_trial_takes_the_smallest_of_tied_best_trials(capsys: pytest.CaptureFixture[str]) -> None:
    """Check that export picks the smallest network among trials tied for best, says so, and obeys --trial."""
    from archsearch.export._plan import _pick_trial
    from archsearch.storage import keys

    study = optuna.create_study(direction="maximize")
    for value, n_params in [(0.9889, 9000), (0.9889, 1200), (0.97, 100)]:
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={keys.N_PARAMS: n_params}))
    assert _pick_trial(study, None).number == 1
    assert "2 trials tie for the best value (0.9889): exporting the smallest, trial 1 (1,200 parameters)" in (
        capsys.readouterr().err
    )
    # An explicit trial number is exported as asked, with nothing said.
    assert _pick_trial(study, 0).number == 0
    assert capsys.readouterr().err == ""
