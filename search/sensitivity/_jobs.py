"""The runs of `archsearch sensitivity`: the jobs of a companion study and the objective that trains them.

A job is one architecture trained with one seed and the hyperparameters of its centre trial. Each job is
enqueued as a WAITING trial of the companion study `<study>.sensitivity`, with the job in its user
attributes, so every archsearch worker that joins that study can train it, the dashboard shows it, and
a job that is finished, queued or running is never enqueued twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.config import SearchConfig
from archsearch.pool import JobKind, Run, TrialObjective, WorkerContext, register_job_kind, trial_label
from archsearch.spaces import Hyperparameters, Neighbour, NetSpec
from archsearch.storage import keys, set_user_attrs

__all__ = [
    "COMPANION_SUFFIX",
    "LIVE_STATES",
    "SENSITIVITY",
    "Centre",
    "SensitivityKind",
    "SensitivityObjective",
    "companion_name",
    "job_id",
    "live_job_count",
    "pending_jobs",
    "plan_jobs",
]

COMPANION_SUFFIX = keys.COMPANION_SUFFIX
# A job held by a trial in one of these states is done or under way; a failed run's job is not.
LIVE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING, TrialState.RUNNING)
JOB_KEYS = (
    keys.JOB_ID,
    keys.CENTRE_TRIAL,
    keys.JOB_KIND,
    keys.CHANGE,
    keys.KEY,
    keys.LAYER,
    keys.DELTA_UNITS,
    keys.SEED,
    keys.WIDTHS,
    keys.DROPOUTS,
    keys.ACTIVATION,
    keys.NORMALIZATION,  # the centre's, when it has a norm layer
    keys.EMBEDDING,  # with keys.EMBEDDING_DIM, only in the jobs of an embedded centre
    keys.EMBEDDING_DIM,
    keys.DEPTH,
    keys.N_PARAMS,
    keys.DELTA_PARAMS,
    keys.LR,
    keys.WEIGHT_DECAY,
    keys.BATCH_SIZE,
    keys.OPTIMIZER,
    keys.LR_SCHEDULE,
    keys.LABEL_SMOOTHING,
)


@dataclass(frozen=True)
class Centre:
    """A trial to perturb: its architecture, its training hyperparameters and the neighbours to compare.

    Attributes:
        trial: Number of the trial in the searched study.
        architecture: The trial's hidden layers.
        hyperparameters: How the trial was trained; every neighbour is trained the same way.
        neighbours: The centre itself first, then the architectures compared with it.
        n_inputs: The features its network reads, which its neighbours read too: its blocks' width, the data's
            whole width without blocks. Parameters are counted at this width.
        n_numeric: How many of those are numeric (an embedding encodes them, the rest are one-hot); None: all.
    """

    trial: int
    architecture: NetSpec
    hyperparameters: Hyperparameters
    neighbours: tuple[Neighbour, ...]
    n_inputs: int
    n_numeric: int | None = None


def companion_name(study_name: str) -> str:
    """The name of the study holding the sensitivity runs of `study_name`."""
    return study_name + COMPANION_SUFFIX


def job_id(centre_trial: int, key: str, seed: int) -> str:
    """The identity of a run: ``"3|w=64|d=0|a=relu|5"`` is trial 3's centre architecture with seed 5."""
    return f"{centre_trial}|{key}|{seed}"


def plan_jobs(centres: Sequence[Centre], seeds: Sequence[int], n_outputs: int) -> list[dict[str, Any]]:
    """List one job per centre, neighbour and seed, as the user attributes of its trial.

    Seed by seed, so that the runs finished by an interrupted analysis cover every neighbour. A job holds
    its architecture's `to_dict`, so an embedded centre's neighbours train with its embedding and read its
    blocks; its parameters are counted at the centre's input width (`Centre.n_inputs`).

    Example:
        >>> jobs = plan_jobs([centre], seeds=[0, 1], n_outputs=3)  # doctest: +SKIP
        >>> jobs[0]["job_id"], jobs[0]["kind"]  # doctest: +SKIP
        ('2|w=64|d=0|a=relu|0', 'centre')
    """
    jobs = []
    for seed in seeds:
        for centre in centres:
            n_inputs, n_numeric = centre.n_inputs, centre.n_numeric
            centre_params = centre.architecture.n_params(n_inputs, n_outputs, n_numeric=n_numeric)
            for neighbour in centre.neighbours:
                architecture = neighbour.architecture
                n_params = architecture.n_params(n_inputs, n_outputs, n_numeric=n_numeric)
                jobs.append(
                    {
                        keys.JOB_ID: job_id(centre.trial, neighbour.key, seed),
                        keys.CENTRE_TRIAL: centre.trial,
                        keys.JOB_KIND: neighbour.kind,
                        keys.CHANGE: neighbour.change,
                        keys.KEY: neighbour.key,
                        keys.LAYER: neighbour.layer,
                        keys.DELTA_UNITS: neighbour.delta_units,
                        keys.SEED: seed,
                        **architecture.to_dict(),
                        keys.DEPTH: architecture.depth,
                        keys.N_PARAMS: n_params,
                        keys.DELTA_PARAMS: n_params - centre_params,
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


class SensitivityObjective(TrialObjective):
    """The objective of a companion study's workers: trains the job stored in each trial.

    The run uses the job's seed as the training seed, so a centre and its neighbours trained with the
    same seed share the initialisation stream and the batch order, whichever worker trains them. It
    returns the best-epoch validation metric; a diverged run is pruned with its reason. Never pruned by
    the pruner (a paired comparison needs every run trained as long as its centre), and no weights kept.
    """

    def prepare(self, trial: optuna.Trial) -> Run:
        """Take the trial's job (or adopt a failed one) and record its seed, depth and size as params."""
        job = trial.user_attrs
        if keys.JOB_ID not in job:
            job = self._adopt_failed_job(trial)
        record_job_params(trial, job)
        return Run(job_net(job), self.settings(job, seed=job[keys.SEED]), self.data, prune_from=None)

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
                set_user_attrs(trial, job)
                return job
        # Another worker took the last job between this worker's count and its claim: stand down, like a
        # search trial claimed after the total was reached (not a failure of the analysis).
        self.stand_down(trial, "another worker took the last sensitivity job")


def job_net(job: dict[str, Any]) -> NetSpec:
    """The architecture a job trains: its stored `NetSpec` keys (a job's norm layer is its centre's)."""
    return NetSpec.from_trial(job)


class SensitivityKind(JobKind):
    """The runs of `archsearch sensitivity`: the jobs enqueued in a companion study, each trained once."""

    name = keys.SENSITIVITY_KIND

    def objective(self, context: WorkerContext) -> SensitivityObjective:
        return SensitivityObjective(context)

    def total(self, study: optuna.Study, config: SearchConfig) -> int:
        """The distinct jobs the companion study holds."""
        return int(study.user_attrs[keys.SENSITIVITY_JOBS])

    def run_namer(self, study: optuna.Study, trials: list[FrozenTrial]) -> Callable[[FrozenTrial], str]:
        """Runs are named "neighbour i/N, seed j/R" instead of by trial number."""
        ordered = sorted(trials, key=lambda t: t.number)
        neighbours = list(
            dict.fromkeys((t.user_attrs.get(keys.CENTRE_TRIAL), t.user_attrs.get(keys.KEY)) for t in ordered)
        )
        seeds = list(dict.fromkeys(t.user_attrs.get(keys.SEED) for t in ordered))

        def name(t: FrozenTrial) -> str:
            i = neighbours.index((t.user_attrs.get(keys.CENTRE_TRIAL), t.user_attrs.get(keys.KEY))) + 1
            j = seeds.index(t.user_attrs.get(keys.SEED)) + 1
            return f"neighbour {i}/{len(neighbours)}, seed {j}/{len(seeds)}: {trial_label(t)}"

        return name


SENSITIVITY = register_job_kind(SensitivityKind())
