"""`archsearch status`: what a study holds, as plain text for a terminal."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from archsearch.config import DEFAULT_TRIALS
from archsearch.storage import epoch_budget, finished_count, heartbeat_ages, keys, mask_url, open_study, state_counts

__all__ = ["counts_line", "study_status", "trial_counts"]


def trial_counts(study: optuna.Study) -> tuple[dict[str, int], int]:
    """Trials by state, and apart from the failed ones the surplus claims (FAIL with `not_run`): a trial
    claimed just as the total was reached trains nothing and is closed as FAIL, which is no failure."""
    counts = state_counts(study)
    surplus = sum(
        1 for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.user_attrs.get(keys.NOT_RUN)
    )
    counts["FAIL"] -= surplus
    return counts, surplus


def counts_line(study: optuna.Study) -> str:
    """The line `search` and `worker` end with: complete, pruned and failed trials, and any surplus claims."""
    counts, surplus = trial_counts(study)
    line = (
        f"Study {study.study_name!r}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed trials"
    )
    plural = "s" if surplus != 1 else ""
    return line + (f" (and {surplus} surplus claim{plural} that trained nothing)." if surplus else ".")


def study_status(storage: optuna.storages.BaseStorage, name: str, *, url: str = "") -> str:
    """A plain-text status report: counts by state, running trials with worker and heartbeat age, the best trial."""
    study = open_study(storage, name, url=url)
    counts, surplus = trial_counts(study)
    lines = [f"Study {name!r}" + (f" in {mask_url(url)}" if url else "")]
    line = "  " + ", ".join(f"{state.lower()} {count}" for state, count in counts.items())
    lines.append(line + (f" (plus {surplus} surplus claims that trained nothing)" if surplus else ""))
    if study.user_attrs.get(keys.TASK_LINE):
        lines.append(f"  {study.user_attrs[keys.TASK_LINE]}")
    config = study.user_attrs.get(keys.CONFIG, {})
    stored = config.get("study", {})
    total = stored.get("n_trials")
    if total is not None:
        lines.append(f"  finished (complete + pruned) {finished_count(study)} of n_trials {total}")
    elif stored.get("timeout"):
        lines.append(f"  finished (complete + pruned) {finished_count(study)}; no n_trials: runs until its timeout")
    elif "n_trials" in stored:
        lines.append(
            f"  finished (complete + pruned) {finished_count(study)} of n_trials {DEFAULT_TRIALS} (the default)"
        )
    memory = _memory_line(study)
    if memory:
        lines.append(memory)
    ages = heartbeat_ages(storage, study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        age = ages.get(trial.number)
        beat = f"heartbeat {age:.0f}s ago" if age is not None else "no heartbeat"
        lines.append(f"  running trial {trial.number}: worker {trial.user_attrs.get(keys.WORKER, '?')}, {beat}")
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if completed and len(study.directions) == 1:
        best = study.best_trial
        metric = study.user_attrs.get(keys.METRIC, "value")
        lines.append(
            f"  best trial {best.number}: val {metric} {best.value:.4f}, widths {best.user_attrs.get(keys.WIDTHS)}, "
            f"{best.user_attrs.get(keys.N_PARAMS, '?')} parameters"
        )
        budget = epoch_budget(study)
        if budget is not None and budget.too_short:
            lines.append(f"  {budget.hint()}")
    else:
        lines.append("  no completed trial yet")
    return "\n".join(lines)


def _memory_line(study: optuna.Study) -> str | None:
    """The largest peak memory any worker process reported with a finished trial, and how many reported."""
    peaks: dict[str, float] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        peak = trial.user_attrs.get(keys.PEAK_RSS_MB)
        if peak is not None:
            worker = str(trial.user_attrs.get(keys.WORKER, "?"))
            peaks[worker] = max(peaks.get(worker, 0.0), float(peak))
    if not peaks:
        return None
    n = len(peaks)
    return (
        f"  memory: peak RSS per worker process up to {max(peaks.values()):,.0f} MB "
        f"({n} worker{'s' if n != 1 else ''} reporting)"
    )
