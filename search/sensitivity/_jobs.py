"""The runs of `archsearch sensitivity`: the jobs of a companion study and the objective that trains them.

A job is one architecture trained with one seed and the hyperparameters of its centre trial. Each job is
enqueued as a WAITING trial of the companion study `<study>.sensitivity`, with the job in its user
attributes, so every archsearch worker that joins that study can train it, the dashboard shows it, and
a job that is finished, queued or running is never enqueued twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.config import SearchConfig
from archsearch.pool import FusedSlot, TotalReached, WorkerContext, train_and_record, train_settings
from archsearch.spaces import Hyperparameters, Neighbour, NetSpec
from archsearch.storage import keys
from archsearch.trainers.data import PreparedData

__all__ = [
    "COMPANION_SUFFIX",
    "LIVE_STATES",
    "Centre",
    "SensitivityObjective",
    "companion_name",
    "job_id",
    "live_job_count",
    "pending_jobs",
    "plan_jobs",
    "sensitivity_objective",
]

COMPANION_SUFFIX = ".sensitivity"
# A job held by a trial in one of these states is done or under way; a failed run's job is not.
LIVE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING, TrialState.RUNNING)
JOB_KEYS = (
    keys.JOB_ID,
    "centre_trial",
    "kind",
    "change",
    "key",
    "layer",
    "delta_units",
    "seed",
    "widths",
    "dropouts",
    "activation",
    keys.EMBEDDING,  # with keys.EMBEDDING_DIM, only in the jobs of an embedded centre
    keys.EMBEDDING_DIM,
    "depth",
    "n_params",
    "delta_params",
    "lr",
    "weight_decay",
    "batch_size",
    "optimizer",
    "lr_schedule",
    "label_smoothing",
    "normalization",
)


@dataclass(frozen=True)
class Centre:
    """A trial to perturb: its architecture, its training hyperparameters and the neighbours to compare.

    Attributes:
        trial: Number of the trial in the searched study.
        architecture: The trial's hidden layers.
        hyperparameters: How the trial was trained; every neighbour is trained the same way.
        neighbours: The centre itself first, then the architectures compared with it.
    """

    trial: int
    architecture: NetSpec
    hyperparameters: Hyperparameters
    neighbours: tuple[Neighbour, ...]


def companion_name(study_name: str) -> str:
    """The name of the study holding the sensitivity runs of `study_name`."""
    return study_name + COMPANION_SUFFIX


def job_id(centre_trial: int, key: str, seed: int) -> str:
    """The identity of a run: ``"3|w=64|d=0|a=relu|5"`` is trial 3's centre architecture with seed 5."""
    return f"{centre_trial}|{key}|{seed}"


def plan_jobs(
    centres: Sequence[Centre], seeds: Sequence[int], n_inputs: int, n_outputs: int, *, n_numeric: int | None = None
) -> list[dict[str, Any]]:
    """List one job per centre, neighbour and seed, as the user attributes of its trial.

    Seed by seed, so that the runs finished by an interrupted analysis cover every neighbour. A job holds
    its architecture's `to_dict`, so an embedded centre's neighbours train with its embedding; `n_numeric`
    counts the inputs it encodes, for parameter counts (None: all of them).

    Example:
        >>> jobs = plan_jobs([centre], seeds=[0, 1], n_inputs=10, n_outputs=3)  # doctest: +SKIP
        >>> jobs[0]["job_id"], jobs[0]["kind"]  # doctest: +SKIP
        ('2|w=64|d=0|a=relu|0', 'centre')
    """
    jobs = []
    for seed in seeds:
        for centre in centres:
            centre_params = centre.architecture.n_params(n_inputs, n_outputs, n_numeric=n_numeric)
            for neighbour in centre.neighbours:
                architecture = neighbour.architecture
                n_params = architecture.n_params(n_inputs, n_outputs, n_numeric=n_numeric)
                jobs.append(
                    {
                        keys.JOB_ID: job_id(centre.trial, neighbour.key, seed),
                        "centre_trial": centre.trial,
                        "kind": neighbour.kind,
                        "change": neighbour.change,
                        "key": neighbour.key,
                        "layer": neighbour.layer,
                        "delta_units": neighbour.delta_units,
                        "seed": seed,
                        **architecture.to_dict(),
                        "depth": architecture.depth,
                        "n_params": n_params,
                        "delta_params": n_params - centre_params,
                        **centre.hyperparameters.to_dict(),
                    }
                )
    return jobs


def pending_jobs(jobs: Iterable[dict[str, Any]], trials: Iterable[FrozenTrial]) -> list[dict[str, Any]]:
    """Return the jobs that no trial holds in a live state: these are the ones to enqueue (the resume)."""
    held = {t.user_attrs.get(keys.JOB_ID) for t in trials if t.state in LIVE_STATES}
    return [job for job in jobs if job[keys.JOB_ID] not in held]


def live_job_count(trials: Iterable[FrozenTrial]) -> int:
    """Count the distinct jobs held by live trials: the finished total the companion study's workers run to."""
    return len({t.user_attrs[keys.JOB_ID] for t in trials if t.state in LIVE_STATES and keys.JOB_ID in t.user_attrs})


def record_job_params(trial: optuna.Trial, job: dict[str, Any]) -> None:
    """Record the run's seed, depth and size as its params, each fixed to its one value.

    optuna-dashboard computes importance over the params and divides by their count, so a study of
    trials without params fails to load there ("division by zero"); fixed one-value params cost nothing
    to "sample" and read as what the run was.
    """
    for name in (keys.SEED, keys.DEPTH, keys.N_PARAMS):
        trial.suggest_int(name, int(job[name]), int(job[name]))


class SensitivityObjective:
    """Callable passed to `study.optimize` on a companion study: trains the job stored in the trial.

    The run uses the job's seed as the training seed, so a centre and its neighbours trained with the
    same seed share the initialisation stream and the batch order, whichever worker trains them. It
    returns the best-epoch validation metric; a diverged run is pruned with its reason.
    """

    def __init__(
        self,
        config: SearchConfig,
        data: PreparedData,
        metric: str,
        *,
        device: str | None = None,
        num_threads: int | None = None,
        worker: str | None = None,
    ):
        self.config = config
        self.data = data
        self.metric = metric
        self.device = device or config.train.device
        # [train] num_threads, when set, is the user's choice; the worker's share of the cores otherwise.
        self.num_threads = config.train.num_threads or num_threads
        self.worker = worker

    def __call__(self, trial: optuna.Trial, *, job: dict[str, Any] | None = None) -> float:
        try:
            if job is None:
                job = self._take_job(trial)
            return self._train(trial, job)
        except (optuna.TrialPruned, TotalReached):
            raise
        except Exception as e:
            trial.set_user_attr(keys.FAIL_REASON, f"{type(e).__name__}: {e}"[:2000])
            raise

    def fused_slot(self, trial: optuna.Trial) -> FusedSlot:
        """For the fused worker: the job's run as a slot (never pruned, no weights kept), see `__call__`.

        Raises:
            TotalReached: No job was left for this trial; it was marked as not run.
        """
        from archsearch.trainers import SlotSpec, fused_unsupported_reason

        try:
            job = self._take_job(trial)
            spec = SlotSpec(job_net(job), self._settings(job))
            reason = fused_unsupported_reason(spec.net, spec.settings)
        except TotalReached:
            raise
        except Exception as e:
            trial.set_user_attr(keys.FAIL_REASON, f"{type(e).__name__}: {e}"[:2000])
            raise
        return FusedSlot(spec, reason, lambda: self(trial, job=job), prune_from=None, more_attrs=None)

    def _take_job(self, trial: optuna.Trial) -> dict[str, Any]:
        if self.worker is not None:
            trial.set_user_attr(keys.WORKER, self.worker)
        job = trial.user_attrs
        if keys.JOB_ID not in job:
            job = self._adopt_failed_job(trial)
        record_job_params(trial, job)
        return job

    def _adopt_failed_job(self, trial: optuna.Trial) -> dict[str, Any]:
        """Give a trial that found no queued job the earliest job whose runs all failed: it is the retry.

        Workers ask for a new trial when the total is not reached and nothing is queued, which happens
        only when a run failed (an error, or a dead worker beyond its retries).
        """
        trials = trial.study.get_trials(deepcopy=False)
        held = {t.user_attrs.get(keys.JOB_ID) for t in trials if t.state in LIVE_STATES}
        for failed in trials:
            if failed.state == TrialState.FAIL and failed.user_attrs.get(keys.JOB_ID) not in (None, *held):
                # Jobs planned before the training recipe knobs lack their keys, and trained without them.
                job = {key: failed.user_attrs[key] for key in JOB_KEYS if key in failed.user_attrs}
                for key, value in job.items():
                    trial.set_user_attr(key, value)
                return job
        # Another worker took the last job between this worker's count and its claim: stand down, like a
        # search trial claimed after the total was reached (not a failure of the analysis).
        trial.set_user_attr(keys.NOT_RUN, True)
        trial.set_user_attr(keys.FAIL_REASON, "not run: another worker took the last sensitivity job")
        raise TotalReached()

    def _settings(self, job: dict[str, Any]) -> Any:
        return train_settings(
            self.config, self.metric, job, seed=job["seed"], device=self.device, num_threads=self.num_threads
        )

    def _train(self, trial: optuna.Trial, job: dict[str, Any]) -> float:
        settings = self._settings(job)
        # Never pruned by the pruner: a paired comparison needs every run trained as long as its centre.
        result = train_and_record(trial, settings, self.data, job_net(job), prune_from=None)
        return result.best_value


def job_net(job: dict[str, Any]) -> NetSpec:
    """The architecture a job trains: its stored `NetSpec` keys (a job's norm layer is its centre's)."""
    return NetSpec.from_trial(job)


def sensitivity_objective(context: WorkerContext) -> SensitivityObjective:
    """The objective factory of a companion study's workers (see `archsearch.pool.ObjectiveFactory`)."""
    return SensitivityObjective(
        context.config,
        context.data,
        context.metric,
        device=context.device,
        num_threads=context.num_threads,
        worker=context.worker,
    )
