"""Size as an objective (issue #26): size measures on every trial, multi-objective studies, budgets and the
errors of bad combinations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.config import ConfigError, SearchConfig
from archsearch.controller import open_search_study, run_search
from archsearch.status import study_status
from archsearch.storage import best_quality_trial, finished_count, front_trials, keys, quality_trials

from .conftest import FinishedSearch, small_config

SIZE_ATTRS = {keys.SIZE_PARAMS, keys.SIZE_TRAINABLE, keys.SIZE_FLOPS}
LATENCY_ATTRS = {keys.LATENCY_MS, keys.LATENCY_BATCH_MS, keys.LATENCY_BATCH, keys.LATENCY_THREADS, keys.LATENCY_DEVICE}


@pytest.mark.parametrize(
    ("study", "match"),
    [
        (
            {"objectives": ["accuracy", "parms"]},
            r"Unknown objective 'parms' in \[study\] objectives \(did you mean 'params'",
        ),
        ({"objectives": ["accuracy"]}, r"'objectives' parameter of \[study\] must be a list of one metric"),
        ({"objectives": ["params", "accuracy"]}, r"'objectives' parameter of \[study\] must be"),
        ({"objectives": ["accuracy", "params", "flops", "latency_ms"]}, r"'objectives' parameter of \[study\]"),
        ({"objectives": ["accuracy", "params", "params"]}, r"without repeated size measures"),
        ({"objectives": "accuracy"}, r"'objectives' parameter of \[study\] must be"),
        (
            {"objectives": ["accuracy", "params"], "metric": "log_loss"},
            r"'metric' parameter of \[study\] must be left out",
        ),
        ({"max_latency_ms": 0}, r"'max_latency_ms' parameter of \[study\] must be a number of milliseconds > 0"),
    ],
)
def test_bad_objectives_are_one_line_errors(tmp_path: Path, study: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        small_config(tmp_path, study=study)


@pytest.mark.parametrize("budget", ["max_params", "max_flops"])
def test_budgets_must_be_positive_ints(tmp_path: Path, budget: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{budget}' parameter of \[space\] must be an int >= 1"):
        small_config(tmp_path, space={budget: 0})


def test_a_budget_no_architecture_meets_fails_before_any_trial(tmp_path: Path) -> None:
    config = small_config(tmp_path, space={"layers": [1, 2], "max_params": 500})
    with pytest.raises(
        ConfigError, match=r"No architecture of \[space\] meets its budget.*the smallest, \[16\] hidden"
    ):
        run_search(config)
    assert optuna.get_all_study_names(config.study.storage) == []


def test_objectives_name_the_metric_and_survive_the_stored_config(tmp_path: Path) -> None:
    config = small_config(tmp_path, study={"objectives": ["balanced_accuracy", "flops"]})
    assert config.metric_for("classification") == "balanced_accuracy"
    assert SearchConfig.from_stored(config.to_dict()) == config


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_single_objective_search_stores_size_and_latency(tmp_path: Path) -> None:
    study = run_search(small_config(tmp_path, study={"n_trials": 3}, train={"epochs": 3}))
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert SIZE_ATTRS | LATENCY_ATTRS <= set(trial.user_attrs)
        assert trial.user_attrs[keys.LATENCY_MS] > 0 and trial.user_attrs[keys.LATENCY_BATCH] == 256


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ["single", "fused"])
def test_a_multi_objective_search_reaches_its_total_and_resumes(tmp_path: Path, engine: str) -> None:
    config = small_config(
        tmp_path,
        study={"n_trials": 4, "objectives": ["accuracy", "params", "latency_ms"]},
        train={"epochs": 3, "engine": engine, "slots": 2},
    )
    study = run_search(config)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE] + [optuna.study.StudyDirection.MINIMIZE] * 2
    assert study.metric_names == ["val accuracy", "params", "latency_ms"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    for t in complete:
        assert t.values[1] == t.user_attrs[keys.SIZE_PARAMS] and t.values[2] == t.user_attrs[keys.LATENCY_MS]
        assert t.values[0] == pytest.approx(t.user_attrs["val_accuracy"])
        assert len(t.user_attrs[keys.VAL_HISTORY]) == t.user_attrs[keys.EPOCHS_RUN]
    assert best_quality_trial(study).values[0] == max(t.values[0] for t in complete)
    assert study_status(study._storage, study.study_name).count("Pareto front of val accuracy and params, latency_ms")
    resumed = run_search(config.replace(n_trials=6))
    assert finished_count(resumed) == 6
    changed = dataclasses.replace(config, study=dataclasses.replace(config.study, objectives=("accuracy", "flops")))
    with pytest.raises(ConfigError, match=r"\[study\] objectives \(stored \['accuracy', 'params', 'latency_ms'\]"):
        open_search_study(changed)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_candidates_over_the_budget_are_not_run_and_not_counted(tmp_path: Path) -> None:
    # digits: 64 inputs, 10 classes; the linear model has 650 parameters, a 16-wide layer 1,210.
    config = small_config(
        tmp_path,
        study={"n_trials": 4, "sampler": "random", "objectives": ["accuracy", "params"]},
        space={"layers": [0, 2], "width": [16, 128], "max_params": 3000, "normalization": ["none"]},
        train={"epochs": 2},
    )
    study = run_search(config)
    assert finished_count(study) == 4
    trained = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert all(t.user_attrs[keys.SIZE_PARAMS] <= 3000 for t in trained)
    refused = [t for t in study.get_trials(states=(TrialState.FAIL,)) if keys.OVER_BUDGET in t.user_attrs]
    assert refused and all(t.user_attrs[keys.SIZE_PARAMS] > 3000 for t in refused)
    assert all(t.user_attrs[keys.NOT_RUN] for t in refused)
    assert front_trials(quality_trials(study), True, ["params"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_trials_over_the_latency_limit_are_infeasible_and_never_the_best(tmp_path: Path) -> None:
    config = small_config(tmp_path, study={"n_trials": 3, "max_latency_ms": 1e-6}, train={"epochs": 2})
    study = run_search(config)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete and all(keys.INFEASIBLE in t.user_attrs for t in complete)
    # What the sampler sees: Optuna 5's named constraint, 4.x's constraints_func result.
    seen = [
        t.system_attrs.get("constraints:latency_ms", (t.system_attrs.get("constraints") or [0])[0]) for t in complete
    ]
    assert all(value > 0 for value in seen)
    with pytest.raises(ValueError, match="No feasible trial"):
        best_quality_trial(study)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> FinishedSearch:
    """A small multi-objective search on digits whose trials span sizes: 8 trials, 4 epochs."""
    folder = tmp_path_factory.mktemp("front")
    config = small_config(
        folder,
        study={"n_trials": 8, "objectives": ["accuracy", "params"], "sampler": "random", "pruner": "none"},
        space={"layers": [0, 2], "width": [16, 128], "normalization": ["none"], "embedding": ["none"]},
        train={"epochs": 4, "patience": 4},
    )
    study = run_search(config)
    return FinishedSearch(config=config, study=study, url=config.study.storage, folder=folder)


def _metadata(out: Path) -> dict:
    import json

    return json.loads((out / "architecture.json").read_text())["metadata"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_export_picks_the_best_trial_within_a_parameter_budget(front: FinishedSearch, tmp_path: Path) -> None:
    from archsearch.export import export_best

    front_search, url = front.study, front.url
    sizes = sorted({t.user_attrs[keys.SIZE_PARAMS] for t in quality_trials(front_search)})
    budget = sizes[len(sizes) // 2]
    within = [t for t in quality_trials(front_search) if t.user_attrs[keys.SIZE_PARAMS] <= budget]
    out = export_best(url, "digits", tmp_path / "m", max_params=budget, refit=False, greedy_ensemble=True)
    meta = _metadata(out)
    assert meta["trial"] == within[0].number
    assert meta["size"]["params"] <= budget and meta["size"]["budget"] == {"max_params": budget}
    members = meta.get("ensemble", {}).get("trials", [meta["trial"]])
    assert meta["size"]["members"] == len(members)
    by_number = {t.number: t for t in front_search.trials}
    assert meta["size"]["params"] == sum(by_number[n].user_attrs[keys.SIZE_PARAMS] for n in members)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_export_budgets_refuse_what_cannot_fit(front: FinishedSearch, tmp_path: Path) -> None:
    from archsearch.export import ExportError, export_best

    front_search, url = front.study, front.url
    smallest = min(quality_trials(front_search), key=lambda t: t.user_attrs[keys.SIZE_PARAMS])
    size = smallest.user_attrs[keys.SIZE_PARAMS]
    with pytest.raises(
        ExportError, match=r"No completed trial of study 'digits' meets the export's budget \(--max-params 1\)"
    ):
        export_best(url, "digits", tmp_path / "a", max_params=1, refit=False)
    with pytest.raises(ExportError, match=r"2 members \(an ensemble counts every member\) are over its budget"):
        export_best(
            url, "digits", tmp_path / "b", trial=smallest.number, ensemble_seeds=2, max_params=size, refit=False
        )
    with pytest.raises(ExportError, match=r"--max-latency-ms option of export must be a number of ms at batch 1 > 0"):
        export_best(url, "digits", tmp_path / "c", max_latency_ms=-1.0)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_report_reads_a_multi_objective_study(front: FinishedSearch) -> None:
    from archsearch.dashboards import build_report

    report = build_report(front.study)
    figures = {f.key: f for f in report.figures}
    assert figures["size_front"].drawable and figures["size_hypervolume"].drawable
    assert figures["metric_vs_params"].drawable and figures["learning_curves"].drawable
    front_table = next(t for t in report.tables if t.key == "size_front").frame
    assert not front_table.empty


def test_export_cli_reads_the_budget_options() -> None:
    from archsearch.cli import build_parser

    args = build_parser().parse_args(
        ["export", "--storage", "sqlite:///x.db", "--study", "s", "--out", "o", "--max-params", "50000"]
        + ["--max-latency-ms", "0.5", "--max-flops", "100000"]
    )
    assert (args.max_params, args.max_flops, args.max_latency_ms) == (50000, 100000, 0.5)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pool_workers_train_a_multi_objective_study(tmp_path: Path) -> None:
    config = small_config(
        tmp_path,
        study={"n_trials": 4, "objectives": ["accuracy", "flops"], "sampler": "random"},
        space={"max_flops": 20_000},
        train={"epochs": 2},
    )
    study = run_search(config, workers=2)
    assert finished_count(study) == 4
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete and all(t.values[1] == t.user_attrs[keys.SIZE_FLOPS] <= 20_000 for t in complete)
    assert (
        len({t.user_attrs[keys.WORKER] for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))}) >= 1
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_sampler_that_keeps_missing_the_budget_stops_the_search(tmp_path: Path, monkeypatch) -> None:
    import archsearch.pool._search as search_module
    from archsearch.controller import SearchError

    monkeypatch.setattr(search_module, "MAX_REFUSED_IN_A_ROW", 3)
    # Two layers of about 17 units meet 1,700 parameters on digits; random widths in [17, 128] rarely are.
    config = small_config(
        tmp_path,
        study={"n_trials": 3, "sampler": "random", "max_consecutive_failures": 2, "seed": 3},
        space={"layers": [2, 2], "width": [17, 128], "max_params": 1700, "normalization": ["none"]}
        | {"embedding": ["none"]},
        train={"epochs": 1},
    )
    with pytest.raises(SearchError, match="3 candidates in a row were over the \\[space\\] budget"):
        run_search(config)
