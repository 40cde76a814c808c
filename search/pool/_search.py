"""The trials of a search: each samples a candidate from the space, records its architecture, then trains.

`SearchObjective` supplies what a search trial adds to the shared bookkeeping of `TrialObjective`: the
claim against the study's total, the sampled candidate, the weights of a completed run and the bound on
the weights kept. `SearchKind` registers it as the kind of every study `archsearch search` creates.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from archsearch.pool._kinds import JobKind, register_job_kind
from archsearch.pool._objective import Run, TrialObjective, WorkerContext
from archsearch.samplers import first_prunable_epoch
from archsearch.spaces import Candidate
from archsearch.storage import drop_weights_beyond_best, keys, open_artifact_store, upload_weights
from archsearch.trainers.data import PreparedData, load_folds

__all__ = ["SEARCH", "SearchKind", "SearchObjective"]


class SearchObjective(TrialObjective):
    """A search's trial: sample a candidate, train it, record it; returns the best-epoch validation metric."""

    def __init__(self, context: WorkerContext):
        super().__init__(context)
        self.storage = context.storage
        self.total = context.total
        self.artifact_store = open_artifact_store(context.artifact_dir)
        self.prune_from = first_prunable_epoch(context.config)
        self._counted: tuple[int, int] | None = None
        self._folds: list[PreparedData] | None = None  # loaded at the first trial, with [data] folds only

    def note_counts(self, claimable: int, existing: int) -> None:
        """The worker's count just before it asks for a trial: trials finished, running or waiting, and all trials.

        The next trial's claim uses it to skip re-reading the study when the total is still far off.
        """
        self._counted = (claimable, existing)

    def trial_seed(self, trial: optuna.Trial) -> int:
        """Each trial trains with its own seed, reproducible from the study seed and trial number."""
        return self.config.study.seed * 1_000_003 + trial.number

    def prepare(self, trial: optuna.Trial) -> Run:
        """Claim the trial against the total, sample its candidate; its architecture is recorded before it trains."""
        self._claim(trial)
        candidate = self.config.space.sample(trial, task=self.data.task)
        settings = self.settings(candidate.hyperparameters.to_dict(), seed=self.trial_seed(trial))
        folds = self.config.data.folds
        if folds and self._folds is None:
            self._folds = load_folds(self.config.data)
        return Run(
            candidate.architecture,
            settings,
            self._folds if folds else self.data,
            self.prune_from,
            unfused_reason="the fused engine does not train [data] folds yet" if folds else None,
            record=self._architecture_attrs(trial, candidate),
        )

    def completed_attrs(self, trial: optuna.Trial) -> Callable[[Any], dict[str, str]]:
        """Upload a completed run's weights as the trial's artifact; returns the attribute that names it."""
        from archsearch.trainers import save_weights

        def weights_attr(result: Any) -> dict[str, str]:
            with tempfile.TemporaryDirectory(prefix="archsearch-") as scratch:
                weights = save_weights(result.state_dict, Path(scratch) / "model.pt")
                return {keys.WEIGHTS: upload_weights(self.artifact_store, weights, trial, self.storage, record=False)}

        return weights_attr

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Study callback: bound the disk used by weights when keep_best_k is set."""
        if trial.state == TrialState.COMPLETE and self.config.study.keep_best_k:
            drop_weights_beyond_best(study, self.artifact_store, self.config.study.keep_best_k)

    def _claim(self, trial: optuna.Trial) -> None:
        """Refuse a sampled trial that would exceed the total because workers asked at the same moment.

        Workers check the total before asking for a trial, but two can ask at once; the trial with the
        higher number then stands down. Retries and enqueued trials always run: they replace or precede
        sampled ones, and they count against the total: a waiting retry of a killed trial takes its
        place before any new trial, so the study never fills with the retry left waiting.
        """
        if self.total is None:
            return
        counted, self._counted = self._counted, None
        if counted is not None:
            # Trials numbered below this one are those the worker counted plus any created since;
            # when even all of them being claimed leaves room, the trial stands without reading more.
            claimable, existing = counted
            if claimable + max(trial.number - existing, 0) < self.total:
                return
        # Trial objects do not expose system attributes; the storage does (by the trial's id).
        system_attrs = self.storage.get_trial_system_attrs(trial._trial_id)
        if keys.OPTUNA_FAILED_TRIAL in system_attrs or keys.OPTUNA_FIXED_PARAMS in system_attrs:
            return
        claimed = trial.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
        )
        if sum(t.number < trial.number for t in claimed) >= self.total:
            self.stand_down(trial, f"the study reached n_trials = {self.total} while it started")

    def _architecture_attrs(self, trial: optuna.Trial, candidate: Candidate) -> dict[str, Any]:
        net = candidate.architecture
        preprocessing = self.data.preprocessing
        read = preprocessing.block_indices(net.blocks)
        n_numeric = len(set(read) & set(preprocessing.numeric_features))
        return {
            **net.to_dict(),  # the one record of the architecture (NetSpec.from_trial reads it back)
            keys.DEPTH: net.depth,
            keys.TOTAL_UNITS: net.total_units,
            keys.N_PARAMS: net.n_params(len(read), self.data.n_outputs, n_numeric=n_numeric),
            keys.LAYER_SHAPE: net.layer_shape(),
            keys.SEED: self.trial_seed(trial),
        }


class SearchKind(JobKind):
    """The trials of a study made by `archsearch search`: sampled until `n_trials` (or the timeout)."""

    name = "search"
    reserve_refit = True  # `archsearch export` refits the best trial: a timeout keeps time for it

    def objective(self, context: WorkerContext) -> SearchObjective:
        return SearchObjective(context)


SEARCH = register_job_kind(SearchKind())
