"""Tests of what `export` ships: the refit on train + validation, --no-refit, and ensembles of trials or seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import archsearch.trainers
from archsearch.cli import main
from archsearch.config import SearchConfig
from archsearch.export import ExportError, describe_export, export_best, load_model
from archsearch.storage import default_artifact_dir, download_weights, keys, open_artifact_store
from archsearch.trainers.data import PreparedData, load_data, load_refit_data

from .conftest import FinishedSearch

pytestmark = pytest.mark.slow  # a real six-trial search, shared by the module


@pytest.fixture(scope="module")
def wine_search(tmp_path_factory: pytest.TempPathFactory) -> FinishedSearch:
    """Six unpruned trials on wine, short enough to refit in a second."""
    from archsearch.controller import run_search

    folder = tmp_path_factory.mktemp("wine-search")
    config = _unpruned_config(folder, "wine", seed=0, width=[8, 32], lr=[1e-2, 3e-2], epochs=6, patience=3)
    study = run_search(config)
    return FinishedSearch(config=config, study=study, url=config.study.storage, folder=folder)


def _unpruned_config(
    folder: Path, dataset: str, *, seed: int, width: list[int], lr: list[float], epochs: int, patience: int
) -> SearchConfig:
    """Six unpruned trials of 0 to 2 layers on a bundled dataset, the study named after it."""
    return SearchConfig.from_dict(
        {
            "study": {
                "name": dataset,
                "storage": f"sqlite:///{folder}/search.db",
                "n_trials": 6,
                "pruner": "none",
                "seed": seed,
            },
            "data": {"dataset": dataset},
            "space": {"layers": [0, 2], "width": width, "lr": lr, "batch_size": [32]},
            "train": {"epochs": epochs, "patience": patience},
        }
    )


def _metadata(folder: Path) -> dict:
    return json.loads((folder / "architecture.json").read_text())["metadata"]


def _unstandardized_rows(x: np.ndarray, data: PreparedData) -> np.ndarray:
    """Rows in encoded units, sorted, so that row sets from different preprocessings compare."""
    rows = x.astype(np.float64) * np.asarray(data.preprocessing.scale) + np.asarray(data.preprocessing.mean)
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.timeout(300)
def test_refit_trains_on_exactly_the_train_and_validation_rows(
    wine_search: FinishedSearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that the refit's trainer sees every train and validation row, no test row, for best_epoch epochs."""
    seen = []
    real_train = archsearch.trainers.train_mlp

    def spy(net, data, settings, report=None):
        seen.append((data, settings))
        return real_train(net, data, settings, report)

    monkeypatch.setattr(archsearch.trainers, "train_mlp", spy)
    out = export_best(wine_search.url, "wine", tmp_path / "m", greedy_ensemble=False)
    ((data, settings),) = seen
    split = load_data(wine_search.config.data)
    expected = _unstandardized_rows(np.concatenate([split.x_train, split.x_val]), split)
    # The same rows, each once: standardized with the refit's statistics, restored to encoded units here.
    np.testing.assert_allclose(_unstandardized_rows(data.x_train, data), expected, atol=1e-4)
    np.testing.assert_allclose(
        _unstandardized_rows(data.x_test, data), _unstandardized_rows(split.x_test, split), atol=1e-4
    )
    best = _exported_trial(wine_search, out)
    assert settings.epochs == best.user_attrs["best_epoch"] and settings.patience is None and settings.keep_last
    meta = _metadata(out)
    assert meta["refit"] is True and meta["refit_epochs"] == best.user_attrs["best_epoch"]
    cooldown = 0.2 if best.params["lr_schedule"] == "constant" else 0.0
    assert settings.cooldown == meta["refit_lr_cooldown"] == cooldown
    assert meta["training_rows"] == {
        "splits": "train + validation",
        "n_rows": len(expected),
        "n_test_rows": len(split.y_test),
    }


@pytest.mark.timeout(300)
def test_no_refit_ships_the_stored_weights_unchanged(wine_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that --no-refit writes the trial's stored weights bit for bit and says it saw the training split."""
    out = export_best(wine_search.url, "wine", tmp_path / "m", refit=False)
    best = _exported_trial(wine_search, out)
    store = open_artifact_store(default_artifact_dir(wine_search.url))
    stored = torch.load(download_weights(store, best.user_attrs[keys.WEIGHTS], tmp_path), weights_only=True)
    shipped = torch.load(out / "model.pt", weights_only=True)
    assert stored.keys() == shipped.keys()
    assert all(torch.equal(stored[name], shipped[name]) for name in stored)
    meta = _metadata(out)
    assert meta["refit"] is False and meta["training_rows"]["splits"] == "train"
    assert meta["test_metrics"] == {k: v for k, v in best.user_attrs.items() if k.startswith("test_")}


@pytest.mark.timeout(300)
def test_ensemble_program_is_the_mean_of_its_members(wine_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that the ensemble's model.pt2 loads with plain torch.export.load and gives the members' mean probabilities."""
    out = export_best(wine_search.url, "wine", tmp_path / "ensemble", ensemble=3, refit=False)
    meta = json.loads((out / "architecture.json").read_text())
    members = [m["trial"] for m in meta["members"]]
    values = [wine_search.study.trials[n].value for n in members]
    assert len(members) == 3 and values == sorted(values, reverse=True)
    assert values[0] == wine_search.study.best_value
    data = load_data(wine_search.config.data)
    encoded = torch.from_numpy(data.preprocessing.encode(data.raw_test))
    with torch.inference_mode():
        ensemble_proba = torch.exp(torch.export.load(out / "model.pt2").module()(encoded))
        singles = []
        for number in members:
            single = export_best(wine_search.url, "wine", tmp_path / f"t{number}", trial=number, refit=False)
            singles.append(torch.softmax(torch.export.load(single / "model.pt2").module()(encoded), dim=1))
    torch.testing.assert_close(ensemble_proba, torch.stack(singles).mean(dim=0), atol=1e-5, rtol=1e-5)
    # archsearch.load_model reads the same folder, and its probabilities are the program's.
    np.testing.assert_allclose(load_model(out).predict_proba(data.raw_test), ensemble_proba.numpy(), atol=1e-5)
    recorded = meta["metadata"]["test_metrics"]["test_accuracy"]
    assert recorded == pytest.approx(float((ensemble_proba.argmax(dim=1).numpy() == data.y_test).mean()))


@pytest.mark.timeout(300)
def test_ensemble_of_seeds_refits_each_seed_and_records_single_vs_ensemble(
    wine_search: FinishedSearch, tmp_path: Path
) -> None:
    """Check that --ensemble-seeds K refits K seeds of the best trial and stores both test metrics."""
    out = export_best(wine_search.url, "wine", tmp_path / "m", ensemble_seeds=3)
    meta = json.loads((out / "architecture.json").read_text())
    chosen = _exported_trial(wine_search, out)
    seed = chosen.user_attrs["seed"]
    assert [m["seed"] for m in meta["members"]] == [seed, seed + 1, seed + 2]
    assert {m["trial"] for m in meta["members"]} == {chosen.number}
    assert meta["metadata"]["ensemble"] == {"of": "seeds", "size": 3}
    assert set(meta["metadata"]["single_test_metrics"]) == set(meta["metadata"]["test_metrics"]) >= {"test_accuracy"}
    alone = export_best(wine_search.url, "wine", tmp_path / "alone", greedy_ensemble=False)
    # Member 0 is the trial's own seed refit, the network a single-network export ships.
    assert _metadata(alone)["test_metrics"] == meta["metadata"]["single_test_metrics"]


@pytest.mark.timeout(300)
def test_the_study_s_export_section_sets_the_default_seeds(wine_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that [export] ensemble_seeds = 2 makes a plain export ship 2 seeds, and that 1 overrides it."""
    import shutil

    for suffix in ("", "-wal", "-shm"):  # SQLite in WAL mode keeps recent writes beside the file
        if (wine_search.folder / f"search.db{suffix}").exists():
            shutil.copy(wine_search.folder / f"search.db{suffix}", tmp_path / f"copy.db{suffix}")
    url = f"sqlite:///{tmp_path}/copy.db"
    study = optuna.load_study(study_name="wine", storage=url)
    stored = study.user_attrs[keys.CONFIG]
    study.set_user_attr(keys.CONFIG, {**stored, "export": {"ensemble_seeds": 2}})
    assert _metadata(export_best(url, "wine", tmp_path / "default"))["ensemble"] == {"of": "seeds", "size": 2}
    assert "ensemble" not in _metadata(export_best(url, "wine", tmp_path / "one", ensemble_seeds=1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ensemble": 0}, r"The 'ensemble' parameter of export_best must be an int >= 2 \(members\)\. Got 0 instead\."),
        (
            {"ensemble_seeds": 0},
            r"The 'ensemble_seeds' parameter of export_best must be an int >= 1 \(members\)\. Got 0 instead\.",
        ),
        (
            {"ensemble": 7},
            r"The 'ensemble' parameter of export_best must be at most the number of completed trials of study 'wine' \(6\)\. Got 7 instead\.",
        ),
        (
            {"ensemble": 2, "ensemble_seeds": 2},
            r"The 'ensemble' and 'ensemble_seeds' parameters of export_best exclude each other",
        ),
        (
            {"ensemble": 2, "trial": 1},
            r"The 'trial' parameter of export_best must be None with 'ensemble'.*Got 1 instead",
        ),
    ],
)
@pytest.mark.timeout(300)
def test_export_best_refuses_bad_ensembles(
    wine_search: FinishedSearch, tmp_path: Path, kwargs: dict, message: str
) -> None:
    """Check that every impossible ensemble is refused with the parameter, the rule and the value."""
    with pytest.raises(ExportError, match=message):
        export_best(wine_search.url, "wine", tmp_path / "m", **kwargs)


@pytest.mark.timeout(300)
def test_cli_export_prints_rows_and_single_vs_ensemble(
    wine_search: FinishedSearch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that `archsearch export --ensemble` prints the rows the model saw and both test metrics, and --ensemble 0 exits 2."""
    assert (
        main(
            ["export", "--storage", wine_search.url, "--study", "wine", "--out", str(tmp_path / "m"), "--ensemble", "2"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "Trained on 160 rows (train + validation, refit); the 18 test rows were held out." in printed
    assert "Test accuracy: best single " in printed and "ensemble of 2 " in printed and "(n = 18 test rows)" in printed
    assert (
        main(
            ["export", "--storage", wine_search.url, "--study", "wine", "--out", str(tmp_path / "m"), "--ensemble", "0"]
        )
        == 2
    )
    assert "The 'ensemble' parameter of export_best must be an int >= 2" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_retrain_is_a_deprecated_alias_of_refit(
    wine_search: FinishedSearch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that --retrain still exports (a refit, with a notice) and retrain=False in Python means --no-refit."""
    assert (
        main(["export", "--storage", wine_search.url, "--study", "wine", "--out", str(tmp_path / "m"), "--retrain"])
        == 0
    )
    assert "--retrain is deprecated" in capsys.readouterr().err
    assert _metadata(tmp_path / "m")["refit"] is True
    with pytest.warns(DeprecationWarning, match="'retrain' is deprecated"):
        out = export_best(wine_search.url, "wine", tmp_path / "n", retrain=False)
    assert _metadata(out)["refit"] is False


def _exported_trial(search: FinishedSearch, out: Path) -> optuna.trial.FrozenTrial:
    """The trial an export shipped: the best, or the smallest network among trials tied for best."""
    return search.study.trials[_metadata(out)["trial"]]


def test_refit_cools_a_constant_lr_down_and_leaves_decaying_schedules_alone(
    wine_search: FinishedSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that only a refit of a constant-lr trial gets the cool-down, and that the search's own training
    (no refit) never does."""
    import copy

    from archsearch.export._refit import REFIT_COOLDOWN, train_member

    seen = []
    monkeypatch.setattr(archsearch.trainers, "train_mlp", lambda *args, **kwargs: seen.append(args[2]))
    trial = copy.deepcopy(next(t for t in wine_search.study.trials if t.params.get("n_layers")))
    data = load_data(wine_search.config.data)
    for schedule, epochs in (("constant", 3), ("cosine", 3), ("constant", None)):
        trial.params = {**trial.params, "lr_schedule": schedule}
        train_member(wine_search.config, "accuracy", trial, data, seed=0, epochs=epochs)
    assert REFIT_COOLDOWN > 0
    assert [s.cooldown for s in seen] == [REFIT_COOLDOWN, 0.0, 0.0]


def _greedy_by_hand(search: FinishedSearch, tmp_path: Path) -> tuple[list[int], list[float]]:
    """The members and weights greedy selection gives on the search's validation split, from no-refit exports."""
    from archsearch.export._selection import greedy_selection

    data = load_data(search.config.data)
    study = search.study
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    chosen = next(t for t in complete if t.number == search.exported_trial.number)
    others = sorted((t for t in complete if t is not chosen), key=lambda t: (-t.value, t.number))
    candidates = [chosen, *others]
    predictions = []
    for trial in candidates:
        folder = export_best(
            search.url, search.study.study_name, tmp_path / f"t{trial.number}", trial=trial.number, refit=False
        )
        module = torch.export.load(folder / "model.pt2").module()
        x_val = data.x_val * np.asarray(data.preprocessing.scale) + np.asarray(data.preprocessing.mean)
        with torch.inference_mode():
            predictions.append(
                torch.softmax(module(torch.from_numpy(x_val.astype(np.float32))).double(), dim=1).numpy()
            )
    counts, _ = greedy_selection(predictions, data.y_val, "accuracy")
    kept = [(t.number, c) for t, c in zip(candidates, counts) if c]
    return [n for n, _ in kept], [c / sum(counts) for _, c in kept]


@pytest.mark.timeout(300)
def test_greedy_ensemble_adds_stored_trials_to_the_refit_best(digits_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that greedy_ensemble ships the refit best plus the stored trials that greedy selection picks on the
    validation split, with their weights; that the other members are the stored weights unchanged; that the
    program loads with plain torch; and that the metadata says what was chosen, on how many rows."""
    out = export_best(digits_search.url, "digits", tmp_path / "greedy", greedy_ensemble=True)
    architecture = json.loads((out / "architecture.json").read_text())
    meta = architecture["metadata"]
    trials, weights = _greedy_by_hand(digits_search, tmp_path)
    assert len(trials) >= 2  # this search's trials err on different validation rows
    assert [m["trial"] for m in architecture["members"]] == trials == meta["ensemble"]["trials"]
    assert [m["weight"] for m in architecture["members"]] == pytest.approx(weights)
    assert [m["epochs"] is not None for m in architecture["members"]] == [True] + [False] * (len(trials) - 1)
    greedy = meta["greedy_ensemble"]
    sizes = digits_search.study.user_attrs["data"]
    assert greedy["members"] == len(trials) and greedy["n_val_rows"] == sizes["n_val"]
    assert greedy["val_accuracy"] >= greedy["best_val_accuracy"]
    assert meta["training_rows"]["n_rows"] == sizes["n_train"] + sizes["n_val"]
    assert meta["training_rows"]["splits"].startswith(
        f"train + validation (trial {trials[0]}, refit); train (the other"
    )
    # Members after the first are the search's networks: their state dicts equal the no-refit exports'.
    shipped = torch.load(out / "model.pt", weights_only=True)
    for index, number in enumerate(trials[1:], start=1):
        stored = torch.load(tmp_path / f"t{number}" / "model.pt", weights_only=True)
        for name, tensor in stored.items():
            torch.testing.assert_close(shipped[f"{index}.{name}"], tensor)
    # The program needs only torch, and the recorded test metric is its own.
    data = load_data(digits_search.config.data)
    with torch.inference_mode():
        logits = torch.export.load(out / "model.pt2").module()(
            torch.from_numpy(data.preprocessing.encode(data.raw_test))
        )
    accuracy = float((logits.argmax(dim=1).numpy() == data.y_test).mean())
    assert meta["test_metrics"]["test_accuracy"] == pytest.approx(accuracy)
    assert set(meta["single_test_metrics"]) == set(meta["test_metrics"])


@pytest.mark.timeout(300)
def test_greedy_ensemble_without_refit_ships_stored_weights_only(digits_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that --no-refit with greedy_ensemble trains nothing: every member is a stored network."""
    out = export_best(digits_search.url, "digits", tmp_path / "g", greedy_ensemble=True, refit=False)
    architecture = json.loads((out / "architecture.json").read_text())
    assert all(m["epochs"] is None for m in architecture["members"])
    assert architecture["metadata"]["training_rows"]["splits"] == "train"
    assert architecture["metadata"]["refit"] is False


def _copy_study(search: FinishedSearch, tmp_path: Path, **sections: dict) -> str:
    """A copy of the search's database whose stored config has `sections` in place of its own; its URL."""
    import shutil

    for suffix in ("", "-wal", "-shm"):  # SQLite in WAL mode keeps recent writes beside the file
        if (search.folder / f"search.db{suffix}").exists():
            shutil.copy(search.folder / f"search.db{suffix}", tmp_path / f"copy.db{suffix}")
    url = f"sqlite:///{tmp_path}/copy.db"
    study = optuna.load_study(study_name=search.study.study_name, storage=url)
    study.set_user_attr(keys.CONFIG, {**study.user_attrs[keys.CONFIG], **sections})  # whole sections replaced
    return url


@pytest.mark.timeout(300)
def test_greedy_ensemble_follows_the_study_s_export_section(wine_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that a plain export selects greedily by default (recorded even when it keeps the best alone), that
    [export] greedy_ensemble = false turns that off, and that --trial or --ensemble-seeds turn it off rather than fail."""
    artifacts = default_artifact_dir(wine_search.url)  # beside the original database, not the copies
    default = _metadata(export_best(wine_search.url, "wine", tmp_path / "default"))
    assert default["greedy_ensemble"]["candidates"] == 6
    assert "greedy_ensemble" not in _metadata(
        export_best(wine_search.url, "wine", tmp_path / "t", trial=default["trial"])
    )
    assert _metadata(export_best(wine_search.url, "wine", tmp_path / "s", ensemble_seeds=2))["ensemble"] == {
        "of": "seeds",
        "size": 2,
    }
    (tmp_path / "off").mkdir()
    off = _copy_study(wine_search, tmp_path / "off", export={"greedy_ensemble": False})
    assert "greedy_ensemble" not in _metadata(export_best(off, "wine", tmp_path / "o", artifacts=artifacts))
    assert "greedy_ensemble" in _metadata(
        export_best(off, "wine", tmp_path / "o2", artifacts=artifacts, greedy_ensemble=True)
    )


@pytest.mark.timeout(300)
def test_greedy_ensemble_asked_for_over_a_seeds_default_ships_no_seeds(
    wine_search: FinishedSearch, tmp_path: Path
) -> None:
    """Check that greedy_ensemble=True on a study whose [export] asks for 2 seeds ships the greedy choice (one
    network when it keeps the best alone), never a seed ensemble: one kind of ensemble at a time."""
    url = _copy_study(wine_search, tmp_path, export={"ensemble_seeds": 2})
    artifacts = default_artifact_dir(wine_search.url)
    assert _metadata(export_best(url, "wine", tmp_path / "plain", artifacts=artifacts))["ensemble"] == {
        "of": "seeds",
        "size": 2,
    }
    meta = _metadata(export_best(url, "wine", tmp_path / "greedy", artifacts=artifacts, greedy_ensemble=True))
    assert meta.get("ensemble", {}).get("of") in (None, "trials chosen greedily")
    assert meta["greedy_ensemble"]["members"] == (meta["ensemble"]["size"] if "ensemble" in meta else 1)


@pytest.mark.timeout(300)
def test_greedy_ensemble_without_the_best_trial_s_weights(wine_search: FinishedSearch, tmp_path: Path) -> None:
    """Check that without the best trial's stored weights the default export ships the refit best alone and says
    why, while asking for the greedy ensemble fails naming the trial and the way out."""
    url = _copy_study(wine_search, tmp_path)  # its artifacts folder (beside the copy) is empty
    meta = _metadata(export_best(url, "wine", tmp_path / "lost"))
    skipped = meta["greedy_ensemble"].pop("skipped")
    assert meta["greedy_ensemble"] == {"members": 1}
    # The reason names the folder it looked in, so a mistyped [study] artifacts shows.
    assert skipped.startswith(f"trial {meta['trial']} has no readable stored weights: The weights of trial ")
    assert "which does not exist (the artifacts folder is elsewhere: pass --artifacts DIR)" in skipped
    assert "Greedy ensemble selection skipped: trial" in describe_export(tmp_path / "lost")
    with pytest.raises(
        ExportError,
        match=rf"The greedy ensemble starts from trial {meta['trial']}'s stored weights, which cannot be used: .*--artifacts DIR\)\. Export with --no-greedy-ensemble to refit it alone\.",
    ):
        export_best(url, "wine", tmp_path / "asked", greedy_ensemble=True)


@pytest.mark.timeout(300)
def test_greedy_ensemble_on_a_regression_study(tmp_path: Path) -> None:
    """Check a greedy export of a regression search end to end: weighted members, and the recorded test RMSE is
    the one load_model's predictions give on the test rows (targets in their own units)."""
    from archsearch.controller import run_search

    config = _unpruned_config(tmp_path, "diabetes", seed=1, width=[8, 64], lr=[3e-3, 3e-2], epochs=8, patience=8)
    run_search(config)
    out = export_best(config.study.storage, "diabetes", tmp_path / "m", greedy_ensemble=True)
    meta = _metadata(out)
    data = load_data(config.data)
    y_test = data.y_test * data.preprocessing.target_scale + data.preprocessing.target_mean
    rmse = float(np.sqrt(np.mean((load_model(out).predict(data.raw_test) - y_test) ** 2)))
    assert meta["test_metrics"]["test_rmse"] == pytest.approx(rmse, rel=1e-4)
    greedy = meta["greedy_ensemble"]
    assert greedy["val_rmse"] <= greedy["best_val_rmse"] + 1e-6
    # What ships clamps to the targets of the rows it trained on (train + validation), even far from them.
    refit = load_refit_data(config.data)
    pool = refit.y_train * refit.preprocessing.target_scale + refit.preprocessing.target_mean
    low, high = json.loads((out / "architecture.json").read_text())["preprocessing"]["target_range"]
    assert (low, high) == pytest.approx((pool.min(), pool.max()))
    raw = np.asarray(data.raw_test, dtype=np.float64)
    far = load_model(out).predict(np.concatenate([raw * 100.0, raw * -100.0]))
    assert far.min() >= low - 1e-3 and far.max() <= high + 1e-3
    assert f"Predictions are clamped to [{low:.6g}, {high:.6g}], the range of the {len(pool):,} training" in (
        describe_export(out)
    )
    # --no-clamp ships the same members unclamped: no range, and far rows may leave it.
    free = export_best(config.study.storage, "diabetes", tmp_path / "free", greedy_ensemble=True, clamp=False)
    assert "target_range" not in json.loads((free / "architecture.json").read_text())["preprocessing"]
    assert "clamped" not in describe_export(free)
    unclamped = load_model(free).predict(np.concatenate([raw * 100.0, raw * -100.0]))
    assert unclamped.min() < low or unclamped.max() > high
    cli = ["export", "--storage", config.study.storage, "--study", "diabetes", "--out", str(tmp_path / "cli")]
    assert main([*cli, "--no-clamp"]) == 0
    assert "target_range" not in json.loads((tmp_path / "cli" / "architecture.json").read_text())["preprocessing"]
    with pytest.raises(
        ExportError, match=r"The 'clamp' parameter of export_best must be True, False or None\. Got 'no' instead\."
    ):
        export_best(config.study.storage, "diabetes", tmp_path / "bad", clamp="no")
    assert not (tmp_path / "bad").exists()
    if "ensemble" in meta:  # a weighted mean of several trials: the weights sum to 1
        assert sum(meta["ensemble"]["weights"]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"greedy_ensemble": "yes"},
            r"The 'greedy_ensemble' parameter of export_best must be True, False or None\. Got 'yes' instead\.",
        ),
        (
            {"greedy_ensemble": True, "trial": 1},
            r"The 'trial' parameter of export_best must be None with greedy_ensemble=True.*Got 1 instead\.",
        ),
        (
            {"greedy_ensemble": True, "ensemble": 2},
            r"The 'ensemble' parameter of export_best must be None with greedy_ensemble=True.*Got 2 instead\.",
        ),
        (
            {"greedy_ensemble": True, "ensemble_seeds": 3},
            r"The 'ensemble_seeds' parameter of export_best must be None or 1 with greedy_ensemble=True.*Got 3 instead\.",
        ),
    ],
)
def test_export_best_refuses_bad_greedy_ensembles(tmp_path: Path, kwargs: dict, message: str) -> None:
    """Check that greedy_ensemble with other members, or not a bool, is refused before the storage is opened."""
    with pytest.raises(ExportError, match=message):
        export_best(f"sqlite:///{tmp_path}/none.db", "s", tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists() and not (tmp_path / "none.db").exists()


@pytest.mark.timeout(300)
def test_greedy_ensemble_is_refused_for_a_study_searched_with_folds(
    wine_search: FinishedSearch, tmp_path: Path
) -> None:
    """Check that a study searched with [data] folds refuses greedy_ensemble (no common validation split), naming the folds."""
    url = _copy_study(wine_search, tmp_path, data={**wine_search.study.user_attrs[keys.CONFIG]["data"], "folds": 3})
    with pytest.raises(
        ExportError, match=r"must be False for study 'wine': it searched with \[data\] folds = 3.*Got True instead\."
    ):
        export_best(url, "wine", tmp_path / "m", greedy_ensemble=True)


@pytest.mark.timeout(300)
def test_cli_export_greedy_ensemble_prints_the_selection(
    digits_search: FinishedSearch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that `archsearch export --greedy-ensemble` prints what selection kept, with its n, and both test metrics."""
    argv = ["export", "--storage", digits_search.url, "--study", "digits", "--out", str(tmp_path / "m")]
    assert main([*argv, "--greedy-ensemble"]) == 0
    printed = capsys.readouterr().out
    n_val = digits_search.study.user_attrs["data"]["n_val"]
    complete = [t for t in digits_search.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert f"Greedy ensemble selection over {len(complete)} stored trials kept " in printed
    assert f"n = {n_val:,} validation rows" in printed
    assert "Test accuracy: best single " in printed
    assert main([*argv, "--greedy-ensemble", "--trial", "0"]) == 2
    assert "The 'trial' parameter of export_best must be None with greedy_ensemble=True" in capsys.readouterr().err
