"""Tests of job kinds: a new kind of study is one TrialObjective subclass and one registration, on both engines."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.config import ConfigError
from archsearch.controller import stored_config
from archsearch.pool import JobKind, Run, TrialObjective, WorkerSlot, job_kind, register_job_kind, run_worker
from archsearch.spaces import NetSpec
from archsearch.storage import keys, make_storage
from archsearch.trainers.data import load_data

from ..conftest import small_config


class _ToyObjective(TrialObjective):
    """Trains one hidden layer whose width the trial suggests; nothing of a search's bookkeeping."""

    def prepare(self, trial: optuna.Trial) -> Run:
        width = trial.suggest_int("width", 4, 8)
        hyperparameters = {"lr": 1e-2, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"}
        return Run(
            NetSpec((width,), (0.0,), "relu"), self.settings(hyperparameters, seed=trial.number), self.data, None
        )


class _ToyKind(JobKind):
    name = "toy"

    def objective(self, context):  # noqa: ANN001, ANN201
        return _ToyObjective(context)

    def total(self, study: optuna.Study, config) -> int:  # noqa: ANN001
        return 3


TOY = register_job_kind(_ToyKind())


def _toy_study(tmp_path: Path, engine: str) -> tuple[str, object]:
    config = small_config(
        tmp_path,
        data={"dataset": "wine"},
        train={"epochs": 2, "patience": 2, "engine": engine, "slots": 2},
    )
    url = config.study.storage
    study = optuna.create_study(study_name="toy", storage=make_storage(url), direction="maximize")
    study.set_user_attr(keys.KIND, TOY.name)
    study.set_user_attr(keys.METRIC, "accuracy")
    study.set_user_attr(keys.CONFIG, stored_config(config))
    return url, config


@pytest.mark.parametrize("engine", ["single", "fused"])
def test_a_registered_toy_kind_trains_through_either_engine(tmp_path: Path, engine: str) -> None:
    """Check that a study of a newly registered kind is trained by its objective on both engines, with the
    outcome recorded as for a search's trials."""
    url, config = _toy_study(tmp_path, engine)
    slot = WorkerSlot(index=0, device="cpu", gpu=None, threads=1)
    outcome = run_worker(url, "toy", slot, data=load_data(config.data))
    trials = optuna.load_study(study_name="toy", storage=url).trials
    assert outcome.finished == 3 and [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        # The shared bookkeeping: the outcome attributes and the worker, whatever the kind and engine.
        assert trial.user_attrs[keys.EPOCHS_RUN] == 2 and "val_accuracy" in trial.user_attrs
        assert trial.user_attrs[keys.WORKER].endswith("/w0")
        assert trial.user_attrs.get(keys.ENGINE) == ("fused" if engine == "fused" else None)


def test_a_kind_name_is_registered_once_and_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    """Check that a second kind under a held name, an unknown kind, and a worker of another kind are refused."""

    class Impostor(_ToyKind):
        pass

    with pytest.raises(ValueError, match=r"The job kind 'toy' is registered already \(by _ToyKind\)"):
        register_job_kind(Impostor())
    url, _ = _toy_study(tmp_path, "single")
    study = optuna.load_study(study_name="toy", storage=url)
    assert job_kind(study) is TOY
    study.set_user_attr(keys.KIND, "riddle")
    with pytest.raises(ConfigError, match="holds jobs of kind 'riddle', which this archsearch does not know"):
        job_kind(study)
    with pytest.raises(ConfigError, match="holds jobs of kind 'riddle', not 'toy'"):
        job_kind(study, TOY)
