"""Tests of `archsearch sensitivity`: job planning and resume, verdicts on a teacher task of known width,
centres across sizes, an interrupt, a killed worker, a failed run, the pool, the CLI, the JSON and the errors."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import optuna
import optuna_dashboard
import pytest
from optuna.trial import TrialState, create_trial

from archsearch.config import ConfigError, SearchConfig
from archsearch.controller import run_search
from archsearch.dashboards._choices import depth_lines
from archsearch.pool import SEARCH, WorkerSlot, run_worker
from archsearch.sensitivity import SensitivityError, add_parser, run_sensitivity
from archsearch.sensitivity._jobs import (
    JOB_KEYS,
    Centre,
    SensitivityObjective,
    live_job_count,
    pending_jobs,
    plan_jobs,
)
from archsearch.spaces import Hyperparameters, NetSpec, neighbourhood
from archsearch.storage import StorageError, keys, make_storage, stored_value

from ...conftest import backdate_trial

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

# Labels from a tanh teacher with 8 hidden units on 2 inputs: the linear model and a network far narrower
# than 8 units cannot fit them, while a few units more or less around 32 change nothing.
TEACHER = {"widths": [8], "rows": 1000, "features": 2, "classes": 3, "noise": 0.02, "seed": 0}
HYPERPARAMETERS = Hyperparameters(lr=0.01, weight_decay=0.0, batch_size=64, optimizer="adam")
REMOVE = "remove layer 1 (linear model with the centre's hyperparameters)"
# R = 2 cannot reach significance; the tests that use it check the runs, not the verdicts.
TWO_SEEDS = pytest.mark.filterwarnings("ignore:With 2 seeds no neighbour")


def _search_config(folder: Path) -> SearchConfig:
    """Two enqueued trials with fixed hyperparameters: trial 0 is [8] (the teacher's width), trial 1 is [32]."""
    return SearchConfig.from_dict(
        {
            "study": {
                "name": "teacher",
                "storage": f"sqlite:///{folder}/teacher.db",
                "n_trials": 2,
                "pruner": "none",
                "heartbeat_interval": 1,
                "grace_period": 2,
            },
            "data": {"dataset": "teacher", "teacher": TEACHER},
            "space": {
                "layers": [1, 1],
                "width": [2, 128],
                "dropout": [0.0, 0.0],
                "activation": ["relu"],
                "lr": [0.01, 0.01],
                "weight_decay": [0.0, 0.0],
                "batch_size": [64],
                "optimizer": ["adam"],
                "baselines": [[8], [32]],
                "recipe_baseline": False,
                "lr_schedule": ["constant"],
                "label_smoothing": [0.0, 0.0],
                "normalization": ["none"],
                "embedding": ["none"],  # the baselines pin the widths only: keep both plain
            },
            # One thread per run: two threads on a tiny MLP only wait for each other on a shared machine.
            "train": {"epochs": 10, "patience": 5, "device": "cpu", "num_threads": 1},
        }
    )


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The searched study's database, made once per module."""
    folder = tmp_path_factory.mktemp("teacher-search")
    study = run_search(_search_config(folder))
    assert [t.user_attrs["widths"] for t in study.trials] == [[8], [32]]
    return folder / "teacher.db"


def _copy(database: Path, folder: Path) -> str:
    """A private copy of the searched study (with its WAL), so each test has its own companion study."""
    target = folder / "teacher.db"
    source, copy = sqlite3.connect(database), sqlite3.connect(target)
    source.backup(copy)
    source.close()
    copy.close()
    return f"sqlite:///{target}"


@pytest.fixture
def url(searched: Path, tmp_path: Path) -> str:
    return _copy(searched, tmp_path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archsearch")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _companion(url: str) -> optuna.Study:
    return optuna.load_study(study_name="teacher.sensitivity", storage=url)


@dataclass
class CliRun:
    url: str
    folder: Path
    result: dict
    stdout: str


@pytest.fixture(scope="module")
def cli_run(searched: Path, tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """`archsearch sensitivity --trial 1 --repeats 10 --steps 0.95` around [32]: 7 architectures x 10 seeds."""
    folder = tmp_path_factory.mktemp("cli")
    url = _copy(searched, folder)
    args = _parser().parse_args(
        [
            "sensitivity",
            "--storage",
            url,
            "--study",
            "teacher",
            "--trial",
            "1",
            "--repeats",
            "10",
            "--steps",
            "0.95",
            "--out-json",
            str(folder / "teacher.json"),
            "--out-html",
            str(folder / "teacher.html"),
            "--quiet",
        ]
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert args.handler(args) == 0
    return CliRun(url, folder, json.loads((folder / "teacher.json").read_text(encoding="utf-8")), out.getvalue())


def _effects(centre: dict) -> dict[str, dict]:
    return {n["change"]: n["effect"] for n in centre["neighbours"]}


def test_plan_jobs_gives_every_architecture_the_same_seeds() -> None:
    """Check that jobs go seed by seed over the centre and its neighbours, with unique ids and the centre's training."""
    architecture = NetSpec(widths=(8,), dropouts=(0.0,), activation="relu")
    neighbours = tuple(neighbourhood(architecture, 2, 3, steps=()))
    jobs = plan_jobs([Centre(4, architecture, HYPERPARAMETERS, neighbours, n_inputs=2)], seeds=[0, 1], n_outputs=3)
    assert [(j["seed"], j["key"]) for j in jobs] == [(seed, n.key) for seed in (0, 1) for n in neighbours]
    assert (jobs[0]["job_id"], jobs[0]["kind"]) == ("4|w=8|d=0|a=relu|0", "centre")
    assert len({j["job_id"] for j in jobs}) == len(jobs)
    assert all(j[key] == value for j in jobs for key, value in HYPERPARAMETERS.to_dict().items())
    # Removing the only layer gives the linear model: 2 x 3 weights + 3 biases, against 51 for [8].
    linear = next(j for j in jobs if j["widths"] == [])
    assert (linear["kind"], linear["n_params"], linear["delta_params"]) == ("remove_layer", 9, 9 - 51)


def test_jobs_of_an_embedded_centre_carry_the_embedding_in_keys_a_retry_copies() -> None:
    """Check that an embedded centre's jobs hold its embedding, and that JOB_KEYS (what a retry of a failed run
    copies) covers every key of a job, so a retry trains the same network."""
    architecture = NetSpec(widths=(8,), dropouts=(0.0,), activation="relu", embedding="pl", embedding_dim=4)
    neighbours = tuple(neighbourhood(architecture, 2, 3, steps=(), n_numeric=2))
    jobs = plan_jobs([Centre(4, architecture, HYPERPARAMETERS, neighbours, n_inputs=2, n_numeric=2)], [0], n_outputs=3)
    assert all(set(job) <= set(JOB_KEYS) for job in jobs)
    centre = jobs[0]
    assert (centre["embedding"], centre["embedding_dim"], centre["job_id"]) == ("pl", 4, "4|w=8|d=0|a=relu|e=pl4|0")
    # 2 features x (4 x 4 + 4) embedding, then Linear(8 -> 8) and Linear(8 -> 3).
    assert centre["n_params"] == 2 * 20 + (8 * 8 + 8) + (8 * 3 + 3)
    linear = next(j for j in jobs if j["widths"] == [])
    assert "embedding" not in linear and linear["n_params"] == 2 * 3 + 3


def test_pending_jobs_skips_finished_queued_and_running_runs_but_not_failed_ones() -> None:
    """Check the resume rule: a job held by a COMPLETE, PRUNED, WAITING or RUNNING trial is not enqueued again."""
    jobs = [{"job_id": name} for name in "abcdef"]
    trials = [
        create_trial(state=TrialState.COMPLETE, value=0.9, user_attrs={"job_id": "a"}),
        create_trial(state=TrialState.PRUNED, user_attrs={"job_id": "b"}),
        create_trial(state=TrialState.WAITING, user_attrs={"job_id": "c"}),
        create_trial(state=TrialState.RUNNING, user_attrs={"job_id": "d"}),
        create_trial(state=TrialState.FAIL, user_attrs={"job_id": "e"}),
    ]
    assert [j["job_id"] for j in pending_jobs(jobs, trials)] == ["e", "f"]
    # The workers' total counts each held job once, however many trials ran it.
    assert (
        live_job_count([*trials, create_trial(state=TrialState.COMPLETE, value=0.8, user_attrs={"job_id": "a"})]) == 4
    )


def test_sensitivity_parser_reads_steps_and_refuses_trial_with_centers(capsys: pytest.CaptureFixture[str]) -> None:
    """Check the defaults of `archsearch sensitivity`, the --steps format and that --trial excludes --centers."""
    base = ["sensitivity", "--storage", "sqlite:///x.db", "--study", "s"]
    args = _parser().parse_args(base)
    assert (args.trial, args.centers, args.repeats, args.steps, args.workers) == (
        None,
        None,
        None,
        (1, 2, 0.1, 0.25, 0.5),
        1,
    )
    assert args.handler.__name__ == "_cmd"
    assert _parser().parse_args([*base, "--steps", "3,0.2"]).steps == (3, 0.2)
    with pytest.raises(SystemExit):
        _parser().parse_args([*base, "--steps", "1,x"])
    assert "must be comma-separated numbers such as 1,2,0.1,0.25,0.5; got '1,x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args([*base, "--trial", "1", "--centers", "2"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"repeats": 1}, r"The 'repeats' parameter of run_sensitivity must be an int >= 2 .*Got 1 instead\."),
        ({"steps": (0.5, 1.5)}, r"The 'steps' parameter of run_sensitivity must be .*Got \(0\.5, 1\.5\) instead\."),
        ({"steps": (0,)}, r"The 'steps' parameter of run_sensitivity must be a list of width changes"),
        ({"trial": 1, "centers": 2}, r"Pass either 'trial' or 'centers' to run_sensitivity, not both"),
        ({"centers": 0}, r"The 'centers' parameter of run_sensitivity must be an int >= 1\. Got 0 instead\."),
        ({"trial": -1}, r"The 'trial' parameter of run_sensitivity must be an int >= 0\. Got -1 instead\."),
        (
            {"margin": -0.01},
            r"The 'margin' parameter of run_sensitivity must be a finite float > 0 .*Got -0\.01 instead\. Pass --margin",
        ),
    ],
)
def test_run_sensitivity_rejects_bad_arguments_before_opening_the_storage(
    kwargs: dict, match: str, tmp_path: Path
) -> None:
    """Check the argument errors, raised before any database is touched."""
    url = f"sqlite:///{tmp_path}/never.db"
    with pytest.raises(SensitivityError, match=match):
        run_sensitivity(url, "teacher", **kwargs)
    assert not (tmp_path / "never.db").exists()


@TWO_SEEDS
@pytest.mark.timeout(120)
def test_run_sensitivity_explains_unusable_studies_and_trials(url: str) -> None:
    """Check the errors for an unknown study, a pruned or missing trial, and foreign or companion studies."""
    storage = make_storage(url)
    study = optuna.load_study(study_name="teacher", storage=storage)
    study.add_trial(create_trial(state=TrialState.PRUNED))
    linear = {"widths": [], "dropouts": [], "activation": "relu", "n_params": 9}
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.5, user_attrs=linear))
    with pytest.raises(StorageError, match=r"No study named 'nope' in .*Studies there: 'teacher'"):
        run_sensitivity(url, "nope")
    with pytest.raises(
        SensitivityError,
        match=r"must be a completed trial; trial 2 of study 'teacher' is PRUNED\. .*the best is trial 1",
    ):
        run_sensitivity(url, "teacher", trial=2)
    with pytest.raises(SensitivityError, match=r"must be a trial of study 'teacher' \(0 to 3\)\. Got 9 instead"):
        run_sensitivity(url, "teacher", trial=9)
    optuna.create_study(study_name="plain", storage=storage)
    with pytest.raises(SensitivityError, match=r"Study 'plain' has no archsearch config"):
        run_sensitivity(url, "plain")
    runs = optuna.create_study(study_name="other.sensitivity", storage=storage)
    runs.set_user_attr("archsearch_kind", "sensitivity")
    runs.set_user_attr("parent_study", "other")
    with pytest.raises(
        SensitivityError, match=r"holds the runs of a sensitivity analysis; pass the study it analysed, 'other'"
    ):
        run_sensitivity(url, "other.sensitivity")
    optuna.create_study(study_name="teacher.sensitivity", storage=storage).set_user_attr("owner", "someone else")
    with pytest.raises(
        SensitivityError, match=r"'teacher.sensitivity' already exists and does not hold the sensitivity runs"
    ):
        run_sensitivity(url, "teacher", trial=1, repeats=2, steps=())


@pytest.mark.timeout(300)
def test_sensitivity_calls_the_linear_and_far_narrower_neighbours_worse(cli_run: CliRun) -> None:
    """Check the verdicts around [32] on an 8-unit teacher: the linear model and 2 units are worse, +-1 unit is not."""
    (centre,) = cli_run.result["centres"]
    effects = _effects(centre)
    assert set(effects) == {
        "layer 1: 32 -> 33 (+1)",
        "layer 1: 32 -> 31 (-1)",
        "layer 1: 32 -> 62 (+95%)",
        "layer 1: 32 -> 2 (-95%)",
        REMOVE,
        "add layer after 1 (copy of width 32)",
    }
    # Removing the only hidden layer is the 0-layer linear model, named as trained with the centre's hyperparameters.
    assert next(n["widths"] for n in centre["neighbours"] if n["change"] == REMOVE) == []
    assert effects[REMOVE]["verdict"] == "worse"
    assert effects["layer 1: 32 -> 2 (-95%)"]["verdict"] == "worse"
    for change in ("layer 1: 32 -> 33 (+1)", "layer 1: 32 -> 31 (-1)"):
        assert effects[change]["verdict"] in ("equivalent", "inconclusive"), effects[change]
    # The summary and the forest plot's caption print the same findings.
    assert centre["findings"] in cli_run.result["summary"]
    assert f"Worse: layer 1: 32 -> 2 (-95%) ({effects['layer 1: 32 -> 2 (-95%)']['mean']:+.4f}" in centre["findings"]


@pytest.mark.timeout(300)
def test_sensitivity_json_holds_effects_noise_floor_and_run_counts(cli_run: CliRun) -> None:
    """Check the JSON file: run counts, the centre's noise floor and detectable difference, and every effect's fields."""
    result = cli_run.result
    assert result["runs"] == {"planned": 70, "trained": 70, "reused": 0, "diverged": 0, "missing": 0}
    assert (result["study"], result["companion_study"], result["metric"], result["direction"]) == (
        "teacher",
        "teacher.sensitivity",
        "accuracy",
        "maximize",
    )
    assert (result["seeds"], result["steps"], result["warnings"]) == (list(range(10)), [0.95], [])
    (centre,) = result["centres"]
    assert (centre["trial"], centre["widths"], centre["n_tests"], centre["can_reach_significance"]) == (
        1,
        [32],
        6,
        True,
    )
    assert centre["hyperparameters"] == HYPERPARAMETERS.to_dict()
    assert sorted(centre["values"]) == sorted(str(s) for s in range(10))
    assert 0 < centre["noise_floor"] < 0.05
    assert 0 < centre["minimum_detectable_difference"] < 0.05
    assert {n["group"] for n in centre["neighbours"]} == {
        "+1 neuron",
        "-1 neuron",
        "+95%",
        "-95%",
        "-1 layer",
        "+1 layer",
    }
    for neighbour in centre["neighbours"]:
        effect = neighbour["effect"]
        assert set(effect) == {
            "mean",
            "ci_low",
            "ci_high",
            "n",
            "p_value",
            "p_adjusted",
            "margin",
            "p_equivalence",
            "verdict",
            "seeds_needed",
            "n_higher",
            "n_lower",
            "label",
        }
        # The centre's sd, unless one validation row is more.
        assert effect["margin"] == centre["margin"] == max(centre["noise_floor"], centre["resolution"])
        assert not centre["margin_given"] and centre["resolution"] > 0
        # The interval is the signed-rank test's own: it excludes 0 exactly when that test's p is below 0.05.
        assert (effect["ci_low"] > 0 or effect["ci_high"] < 0) == (effect["p_value"] < 0.05) and effect["n"] == 10
        assert effect["p_value"] <= effect["p_adjusted"] <= 1


@pytest.mark.timeout(300)
def test_sensitivity_stores_every_run_and_the_report_in_the_companion_study(cli_run: CliRun) -> None:
    """Check that each run is a trial of `<study>.sensitivity` with its job and metrics, and the report is saved."""
    companion = _companion(cli_run.url)
    attrs = companion.user_attrs
    assert (attrs["archsearch_kind"], attrs["parent_study"], attrs["sensitivity_jobs"]) == (
        "sensitivity",
        "teacher",
        70,
    )
    assert attrs["archsearch_config"]["data"]["teacher"]["widths"] == [8]
    assert companion.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = companion.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == len(companion.trials) == 70
    expected = {
        "job_id",
        "centre_trial",
        "kind",
        "change",
        "key",
        "seed",
        "widths",
        "dropouts",
        "activation",
        "n_params",
        "val_accuracy",
        "test_accuracy",
        "epochs_run",
        "worker",
    }
    assert all(expected <= set(t.user_attrs) for t in trials)
    assert all(t.value == pytest.approx(t.user_attrs["val_accuracy"]) and t.intermediate_values for t in trials)
    assert "Worse: layer 1: 32 -> 2 (-95%)" in optuna_dashboard.get_note(companion)
    storage = make_storage(cli_run.url)
    saved = storage.get_study_system_attrs(storage.get_study_id_from_name("teacher.sensitivity"))
    assert any("archsearch_01_sensitivity_forest_1" in key for key in saved)  # the figures, for optuna-dashboard
    html = (cli_run.folder / "teacher.html").read_text(encoding="utf-8")
    assert html.count('class="plotly-graph-div"') == 2  # the forest plot and the width curves
    assert REMOVE in cli_run.stdout and "worse" in cli_run.stdout
    # The result is stored too, so the search's report quotes its paired verdict on the linear model.
    assert stored_value(attrs, keys.SENSITIVITY_RESULT)["centres"][0]["trial"] == 1
    (line,) = depth_lines(optuna.load_study(study_name="teacher", storage=cli_run.url))
    assert line.startswith(
        "- Linear model or hidden layers, paired seeds (sensitivity centre trial 1, hidden layers [32]; differences"
    )
    assert "the linear model (fitted with the centre's hyperparameters): worse, accuracy -" in line
    assert "differences from it over n = 10 seeds" in line


@pytest.mark.timeout(300)
def test_sensitivity_rerun_trains_nothing_and_gives_the_same_effects(cli_run: CliRun) -> None:
    """Check that the same analysis again reuses all 70 runs of the companion study and finds the same effects."""
    result = run_sensitivity(cli_run.url, "teacher", trial=1, repeats=10, steps=(0.95,))
    assert (result.runs_trained, result.runs_reused) == (0, 70)
    assert result.to_dict()["centres"] == cli_run.result["centres"]
    assert len(_companion(cli_run.url).trials) == 70


@pytest.mark.timeout(300)
def test_sensitivity_centers_find_narrowing_hurts_most_near_the_teacher_width(url: str) -> None:
    """Check that with --centers, removing 75% of the units costs more at [8] (the teacher's width) than at [32]."""
    with pytest.warns(
        UserWarning,
        match=r"With 3 seeds no neighbour of trials 0, 1 can be called .* That takes at least 8 seeds \(--repeats\)\.",
    ):
        result = run_sensitivity(url, "teacher", centers=2, repeats=3, steps=(0.75,))
    near, wide = result.centres
    assert (near.widths, wide.widths) == ((8,), (32,))
    assert {n.group for n in near.neighbours} == {"+1 neuron", "-1 neuron", "+75%", "-75%", "-1 layer", "+1 layer"}

    def cut(centre) -> float:
        return next(n for n in centre.neighbours if n.group == "-75%").effect.mean

    # 8 -> 2 units cannot fit the teacher, 32 -> 8 units still can.
    assert cut(near) < cut(wide) - 0.02
    assert cut(near) < -near.noise_floor
    assert "sensitivity_across_sizes" in [f.key for f in result.report().figures if f.drawable]


@TWO_SEEDS
@pytest.mark.timeout(300)
def test_sensitivity_resumes_after_an_interrupt_and_a_killed_worker(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that a rerun on the pool trains only the remainder, and retries the run of a killed worker."""
    options = {"trial": 0, "repeats": 2, "steps": ()}  # [8], 9, 7, linear, [8, 8] x 2 seeds: 10 runs
    started: list[str] = []
    prepare = SensitivityObjective.prepare

    def interrupt_the_fourth(self, trial):
        run = prepare(self, trial)
        if len(started) == 3:
            raise KeyboardInterrupt  # Ctrl-C during the 4th run
        started.append(trial.user_attrs["job_id"])
        return run

    monkeypatch.setattr(SensitivityObjective, "prepare", interrupt_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        run_sensitivity(url, "teacher", **options)
    monkeypatch.undo()
    storage = make_storage(url)
    companion = optuna.load_study(study_name="teacher.sensitivity", storage=storage)
    before = {t.user_attrs["job_id"]: t.value for t in companion.get_trials(states=(TrialState.COMPLETE,))}
    assert sorted(before) == sorted(started)
    # A worker took the next queued run and was killed: the trial stays RUNNING and its heartbeat stops.
    victim = companion.get_trials(states=(TrialState.WAITING,))[0]
    storage.set_trial_state_values(victim._trial_id, TrialState.RUNNING)
    storage.record_heartbeat(victim._trial_id)
    backdate_trial(url, victim._trial_id, 5)  # past the study's grace period of 2 seconds

    result = run_sensitivity(url, "teacher", workers=2, **options)
    assert (result.runs_reused, result.runs_trained, result.runs_missing) == (3, 7, 0)
    trials = companion.get_trials()
    assert trials[victim.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["job_id"] == victim.user_attrs["job_id"]
    # The runs finished before the interrupt were kept, not trained again.
    assert {
        t.user_attrs["job_id"]: t.value
        for t in trials
        if t.user_attrs.get("job_id") in before and t.state == TrialState.COMPLETE
    } == before
    assert len(companion.get_trials(states=(TrialState.COMPLETE,))) == 10


@TWO_SEEDS
@pytest.mark.timeout(300)
def test_sensitivity_retries_a_failed_run_and_leaves_diverged_runs_out(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that a failed run is run again before the analysis ends, and diverged runs are pruned and counted."""
    import archsearch.trainers

    failed: list[int] = []
    prepare, train_mlp = SensitivityObjective.prepare, archsearch.trainers.train_mlp

    def fail_once(self, trial):
        run = prepare(self, trial)
        if not failed:
            failed.append(trial.number)
            raise RuntimeError("out of memory, once")
        return run

    def diverge(net, data, settings, report=None):
        result = train_mlp(net, data, settings, report)
        # 7 units diverge with every seed, 9 units with seed 0 only.
        if list(net.widths) == [7] or (list(net.widths) == [9] and settings.seed == 0):
            return dataclasses.replace(result, status="diverged", reason="loss became nan at epoch 1")
        return result

    monkeypatch.setattr(SensitivityObjective, "prepare", fail_once)
    monkeypatch.setattr(archsearch.trainers, "train_mlp", diverge)
    result = run_sensitivity(url, "teacher", trial=0, repeats=2, steps=())
    assert (result.runs_trained, result.runs_diverged, result.runs_missing) == (10, 3, 0)
    trials = _companion(url).trials
    first = trials[failed[0]]
    assert (first.state, first.user_attrs["fail_reason"]) == (TrialState.FAIL, "RuntimeError: out of memory, once")
    (retry,) = [
        t for t in trials if t.user_attrs.get("job_id") == first.user_attrs["job_id"] and t.state != TrialState.FAIL
    ]
    assert retry.number > first.number
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert [t.user_attrs["pruned_reason"] for t in pruned] == ["loss became nan at epoch 1"] * 3
    # A diverged run leaves its seed out of the comparison; with no seed left there is no effect.
    neighbours = {n.change: n for n in result.centres[0].neighbours}
    plus, minus = neighbours["layer 1: 8 -> 9 (+1)"], neighbours["layer 1: 8 -> 7 (-1)"]
    assert (plus.diverged, plus.effect.n, sorted(plus.values)) == (1, 1, [1])
    assert (minus.diverged, minus.effect, minus.values) == (2, None, {})
    assert result.to_dict()["centres"][0]["neighbours"][1]["effect"] is None
    assert "no paired run finished" in result.table()
    # A worker joining later reads its total (10 jobs) from the study and finds nothing left to train.
    slot = WorkerSlot(index=0, device="cpu", gpu=None, threads=1)
    assert run_worker(url, "teacher.sensitivity", slot).finished == 0
    # A worker given a search's kind would sample new trials into the analysis: it is refused.
    with pytest.raises(
        ConfigError, match="holds jobs of kind 'sensitivity', not 'search'; join it with `archsearch worker`"
    ):
        run_worker(url, "teacher.sensitivity", slot, kind=SEARCH)


def test_default_repeats_lets_holm_reach_significance() -> None:
    """Check that the default seed count is 8, raised until the smallest exact p passes Holm's strictest threshold."""
    from types import SimpleNamespace

    from archsearch.sensitivity._run import default_repeats

    def centre(n_neighbours: int) -> SimpleNamespace:
        return SimpleNamespace(neighbours=tuple(range(n_neighbours + 1)))  # the centre is listed first

    assert default_repeats([centre(3)]) == 8  # 2/2**8 = 0.0078 < 0.05/3
    # 13 neighbours: 0.05/13 = 0.0038 needs 2/2**n below it, so n = 10 (0.00195); 9 gives 0.0039.
    assert default_repeats([centre(13)]) == 10
    assert default_repeats([centre(3), centre(13)]) == 10
    assert default_repeats([centre(0)]) == 8


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sensitivity_of_a_linear_centre_asks_whether_a_hidden_layer_helps(tmp_path: Path) -> None:
    """Check that a linear best trial gets one hidden layer at the space's narrowest, middle and widest width."""
    config = _search_config(tmp_path).to_dict()
    config["study"]["n_trials"] = 1  # only the enqueued linear baseline: the best trial is the linear model
    config["space"].update({"layers": [0, 1], "width": [4, 64], "baselines": []})
    study = run_search(SearchConfig.from_dict(config))
    assert study.best_trial.user_attrs["widths"] == []
    result = run_sensitivity(config["study"]["storage"], "teacher", repeats=8)
    (centre,) = result.centres
    assert (centre.trial, centre.widths) == (0, ())
    changes = {n.change: n for n in centre.neighbours}
    # 4 and 64 are the ends of the space's widths, 16 their geometric middle.
    assert list(changes) == ["one hidden layer of 4", "one hidden layer of 16", "one hidden layer of 64"]
    assert all(n.kind == "hidden_layer" and n.dropouts == (0.0,) for n in centre.neighbours)
    # The 8-unit tanh teacher is out of reach of the linear model: 16 and 64 hidden units do better.
    assert (
        changes["one hidden layer of 16"].effect.verdict == changes["one hidden layer of 64"].effect.verdict == "better"
    )
    assert "Centre trial 0 (linear model;" in result.summary
    (line,) = depth_lines(study)
    assert "sensitivity centre trial 0, a linear model" in line and "one hidden layer of 64: better, accuracy +" in line
    assert "Better: " in centre_text(result) and "one hidden layer of 64" in centre_text(result)
    assert [f.key for f in result.report().figures if f.drawable] == ["sensitivity_forest_0", "sensitivity_widths_0"]


def centre_text(result) -> str:
    """The findings of the only centre, as the summary and the forest plot's caption print them."""
    return result.to_dict()["centres"][0]["findings"]


@TWO_SEEDS
@pytest.mark.timeout(300)
def test_sensitivity_refused_for_edited_data_writes_nothing(tmp_path: Path) -> None:
    """Check that an analysis refused because the study's CSV changed since the search creates no companion
    study and queues no run (it used to queue 12 runs first, which the next analysis then trained)."""
    from sklearn.datasets import load_wine

    from archsearch.storage import study_names

    frame = load_wine(as_frame=True).frame
    csv = tmp_path / "wine.csv"
    frame.to_csv(csv, index=False)
    config = SearchConfig.from_dict(
        {
            "study": {"name": "wine", "storage": f"sqlite:///{tmp_path}/wine.db", "n_trials": 1},
            "data": {"path": str(csv)},
            "space": {"layers": [0, 1], "width": [4, 16], "recipe_baseline": False},
            "train": {"epochs": 2, "patience": 2, "device": "cpu", "num_threads": 1},
        }
    )
    run_search(config)
    frame.loc[0, "alcohol"] += 1.0  # one value edited after the search
    frame.to_csv(csv, index=False)
    with pytest.raises(ConfigError, match=r"The data of study 'wine' .* changed since the study was created"):
        run_sensitivity(config.study.storage, "wine", repeats=2)
    assert study_names(make_storage(config.study.storage)) == ["wine"]


@pytest.mark.timeout(300)
def test_a_centre_on_one_block_counts_its_parameters_at_that_blocks_width(tmp_path: Path) -> None:
    """Check that the centre and neighbours of a trial on one of two 6-feature blocks are counted on 6 inputs,
    not on the data's 12, in the result and in the runs' stored jobs."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(300) % 4
    x = rng.normal(size=(300, 12)).astype(np.float32) + np.eye(4, 12, dtype=np.float32)[y]
    np.savez(tmp_path / "two.npz", X=x, y=y)
    url = f"sqlite:///{tmp_path}/b.db"
    sections = {
        "study": {"name": "blocks", "storage": url, "n_trials": 2, "seed": 0},
        "data": {"path": str(tmp_path / "two.npz"), "blocks": {"a": [0, 6], "b": [6, 12]}},
        "space": {"layers": [1, 1], "width": [8, 8], "blocks": [["a"]], "recipe_baseline": False},
        "train": {"epochs": 2, "patience": 2},
    }
    study = run_search(SearchConfig.from_dict(sections))
    centre_trial = next(t for t in study.trials if t.state == TrialState.COMPLETE and t.user_attrs[keys.WIDTHS] == [8])
    result = run_sensitivity(url, "blocks", trial=centre_trial.number, repeats=2, steps=())
    centre = result.centres[0]
    # Linear(6 -> 8) and Linear(8 -> 4): what the trial stored, and what the network trained on block a holds.
    assert centre.n_params == 6 * 8 + 8 + 8 * 4 + 4 == centre_trial.user_attrs[keys.N_PARAMS]
    removed = next(n for n in centre.neighbours if n.widths == ())
    assert removed.n_params == 6 * 4 + 4  # the linear model on block a
    companion = optuna.load_study(study_name="blocks.sensitivity", storage=url)
    stored = {t.user_attrs[keys.JOB_KIND]: t.user_attrs[keys.N_PARAMS] for t in companion.trials}
    assert (stored["centre"], stored["remove_layer"]) == (centre.n_params, removed.n_params)
