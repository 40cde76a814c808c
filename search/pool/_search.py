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
from archsearch.pool._objective import OverBudget, Run, TrialObjective, WorkerContext
from archsearch.pool._stratum import HISTORY_DECIMALS, StratumRule, metric_resolution
from archsearch.samplers import first_prunable_epoch
from archsearch.spaces import Candidate, NetSize, NetSpec, net_size, over_budget
from archsearch.storage import (
    SIZE_KEYS,
    drop_weights_beyond_best,
    keys,
    open_artifact_store,
    set_user_attrs,
    upload_weights,
)
from archsearch.trainers.data import PreparedData, load_folds

__all__ = ["LATENCY_CONSTRAINT", "SEARCH", "SearchKind", "SearchObjective"]

LATENCY_CONSTRAINT = "latency_ms"  # the Optuna constraint of [study] max_latency_ms: latency less the limit
# Refusals in a row before one counts as a failure: at ~20 ms each, seconds of sampling with nothing trained.
MAX_REFUSED_IN_A_ROW = 200


class BudgetStall(RuntimeError):
    """The sampler keeps proposing candidates over the [space] budget; the trial fails (a real failure)."""


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
        self.sizes = (context.config.study.objectives or ())[1:]  # size objectives: empty for a single one
        resolution = metric_resolution(context.metric, context.data.y_val)
        self.stratum_rule = StratumRule(context.config, context.metric, resolution=resolution) if self.sizes else None
        self._claimed: dict[int, tuple[NetSpec, NetSize]] = {}  # this worker's trials, until they end
        self._measured: dict[int, dict[str, Any]] = {}  # their size and latency attributes, for objective_values
        self.refused_in_a_row = 0  # candidates over the [space] budget since the last one within it

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
        net, size = candidate.architecture, self._size(candidate.architecture)
        record = self._architecture_attrs(trial, candidate, size)
        space = self.config.space
        if why := over_budget(size, space.max_params, space.max_flops):
            self.refuse(trial, record, why)
        self.refused_in_a_row = 0
        self._claimed[trial.number] = (net, size)
        self._measured[trial.number] = {name: record[key] for name, key in SIZE_KEYS.items() if key in record}
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
            record=record,
            judge=None if self.stratum_rule is None else self.stratum_rule.judge(trial.study, size.params),
        )

    def refuse(self, trial: optuna.Trial, record: dict[str, Any], why: str) -> None:
        """Fail a candidate over the space's budget as not run (it does not count against the total).

        Raises:
            OverBudget: Always; after MAX_REFUSED_IN_A_ROW refusals in a row a BudgetStall instead, a real
                failure (so `max_consecutive_failures` of them stop a search whose sampler cannot find the
                budget's networks, instead of filling the study with refusals).
        """
        self.refused_in_a_row += 1
        if self.refused_in_a_row >= MAX_REFUSED_IN_A_ROW:
            self.refused_in_a_row = 0
            set_user_attrs(trial, {**record, keys.OVER_BUDGET: why})  # a failure: its reason is the error's
            raise BudgetStall(
                f"{MAX_REFUSED_IN_A_ROW} candidates in a row were over the [space] budget (the last: {why}): the "
                "sampler rarely finds networks within it; narrow [space] layers and width towards the budget"
            )
        reason = f"not run: over budget: {why}"
        set_user_attrs(trial, {**record, keys.NOT_RUN: True, keys.OVER_BUDGET: why, keys.FAIL_REASON: reason})
        raise OverBudget(reason)

    def objective_values(self, trial: optuna.Trial, value: float) -> float | list[float]:
        """The best validation value; with [study] objectives, then each size measure (minimised)."""
        measured = self._measured.pop(trial.number, {})
        self._claimed.pop(trial.number, None)
        if not self.sizes:
            return value
        return [value, *(float(measured[name]) for name in self.sizes)]

    def completed_attrs(self, trial: optuna.Trial) -> Callable[[Any], dict[str, str]]:
        """Upload a completed run's weights as the trial's artifact; returns the attribute that names it."""
        from archsearch.trainers import save_weights

        def weights_attr(result: Any) -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="archsearch-") as scratch:
                weights = save_weights(result.state_dict, Path(scratch) / "model.pt")
                attrs = {keys.WEIGHTS: upload_weights(self.artifact_store, weights, trial, self.storage, record=False)}
            attrs.update(self._latency_attrs(trial, result))
            if self.sizes and result.history:
                attrs[keys.VAL_HISTORY] = [round(float(v), HISTORY_DECIMALS) for v in result.history]
            return attrs

        return weights_attr

    def _latency_attrs(self, trial: optuna.Trial, result: Any) -> dict[str, Any]:
        """Time the trained network on the trial's device; mark it infeasible over [study] max_latency_ms."""
        from archsearch.trainers import measure_latency

        net, _ = self._claimed[trial.number]
        # With folds the weights are the first fold's model, whose one-hot width is its own: a category
        # missing from that fold's training rows makes it narrower than the whole table's.
        data = self._folds[0] if self.config.data.folds and self._folds else self.data
        latency = measure_latency(
            net,
            data.preprocessing,
            data.n_outputs,
            result.state_dict,
            device=result.device,
            num_threads=self.num_threads,
        )
        attrs: dict[str, Any] = {
            keys.LATENCY_MS: round(latency.ms, 6),
            keys.LATENCY_BATCH_MS: round(latency.batch_ms, 6),
            keys.LATENCY_BATCH: latency.batch,
            keys.LATENCY_THREADS: latency.threads,
            keys.LATENCY_DEVICE: latency.device,
        }
        self._measured.setdefault(trial.number, {})["latency_ms"] = attrs[keys.LATENCY_MS]
        limit = self.config.study.max_latency_ms
        if limit is not None and latency.ms > limit:
            attrs[keys.INFEASIBLE] = f"latency {latency.ms:.4g} ms > [study] max_latency_ms {limit:g}"
        if limit is not None and hasattr(trial, "set_constraint"):  # Optuna 5: what the sampler models
            trial.set_constraint(LATENCY_CONSTRAINT, latency.ms - limit)
        return attrs

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Study callback: bound the disk used by weights when keep_best_k is set."""
        self._claimed.pop(trial.number, None)  # a pruned or failed trial's sizes are not told
        self._measured.pop(trial.number, None)
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

    def _size(self, net: NetSpec) -> NetSize:
        n_inputs, n_numeric = self.data.preprocessing.input_counts(net.blocks)
        return net_size(net, n_inputs, self.data.n_outputs, n_numeric=n_numeric)

    def _solver_attr(self, net: NetSpec) -> dict[str, str]:
        """{SOLVER: "lbfgs"} for a linear trial that L-BFGS fits, so summaries leave out its unused lr and batch."""
        from archsearch.trainers import lbfgs_fits

        return {keys.SOLVER: "lbfgs"} if lbfgs_fits(net, self.config.train.linear_solver, self.data) else {}

    def _architecture_attrs(self, trial: optuna.Trial, candidate: Candidate, size: NetSize) -> dict[str, Any]:
        net = candidate.architecture
        n_inputs, n_numeric = self.data.preprocessing.input_counts(net.blocks)
        return {
            **net.to_dict(),  # the one record of the architecture (NetSpec.from_trial reads it back)
            keys.DEPTH: net.depth,
            keys.TOTAL_UNITS: net.total_units,
            keys.N_PARAMS: net.n_params(n_inputs, self.data.n_outputs, n_numeric=n_numeric),
            keys.LAYER_SHAPE: net.layer_shape(),
            keys.SEED: self.trial_seed(trial),
            **self._solver_attr(net),
            keys.SIZE_PARAMS: size.params,
            keys.SIZE_TRAINABLE: size.trainable,
            keys.SIZE_FLOPS: size.flops,
        }


class SearchKind(JobKind):
    """The trials of a study made by `archsearch search`: sampled until `n_trials` (or the timeout)."""

    name = "search"
    reserve_refit = True  # `archsearch export` refits the best trial: a timeout keeps time for it

    def objective(self, context: WorkerContext) -> SearchObjective:
        return SearchObjective(context)


SEARCH = register_job_kind(SearchKind())
