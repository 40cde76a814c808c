"""`archsearch status`: what a study holds, as plain text for a terminal."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from archsearch.config import DEFAULT_TRIALS
from archsearch.storage import (
    epoch_budget,
    finished_count,
    front_trials,
    heartbeat_ages,
    keys,
    mask_url,
    maximizes,
    open_study,
    quality_trials,
    quality_value,
    size_objectives,
    size_value,
    state_counts,
)

__all__ = ["counts_line", "front_lines", "study_status", "trial_counts"]

FRONT_SHOWN = 8  # front members listed by `status` and `search`; the report's table has them all


def front_lines(study: optuna.Study) -> list[str]:
    """A multi-objective study's Pareto front, smallest first, and its infeasible trials; [] for one objective."""
    sizes = size_objectives(study)
    if not sizes:
        return []
    metric = study.user_attrs.get(keys.METRIC, "value")
    front = front_trials(quality_trials(study), maximizes(study), sizes)
    lines = [f"Pareto front of val {metric} and {', '.join(sizes)}: {len(front)} trials"]
    for t in front[:FRONT_SHOWN]:
        measured = ", ".join(f"{name} {size_value(t, name):,.4g}" for name in sizes)
        lines.append(f"  trial {t.number}: val {metric} {quality_value(t):.4f}, {measured}")
    if len(front) > FRONT_SHOWN:
        lines.append(f"  ... and {len(front) - FRONT_SHOWN} more (archsearch report draws them all)")
    infeasible = len(quality_trials(study, feasible_only=False)) - len(quality_trials(study))
    if infeasible:
        lines.append(f"{infeasible} complete trials over [study] max_latency_ms are infeasible (never the best)")
    return lines


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
    over = sum(
        1 for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if keys.OVER_BUDGET in t.user_attrs
    )
    refused = f" ({over} of them candidates over the [space] budget)" if over else ""
    return line + (f" (and {surplus} surplus claim{plural} that trained nothing{refused})." if surplus else ".")


def study_status(storage: optuna.storages.BaseStorage, name: str, *, url: str = "") -> str:
    """A plain-text status report: counts by state, running trials with worker and heartbeat age, the best trial."""
    study = open_study(storage, name, url=url)
    counts, surplus = trial_counts(study)
    lines = [f"Study {name!r}" + (f" in {mask_url(url)}" if url else "")]
    line = "  " + ", ".join(f"{state.lower()} {count}" for state, count in counts.items())
    lines.append(line + (f" (plus {surplus} surplus claims that trained nothing)" if surplus else ""))
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
    ages = heartbeat_ages(storage, study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        age = ages.get(trial.number)
        beat = f"heartbeat {age:.0f}s ago" if age is not None else "no heartbeat"
        lines.append(f"  running trial {trial.number}: worker {trial.user_attrs.get(keys.WORKER, '?')}, {beat}")
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    feasible = quality_trials(study)
    if completed and feasible:
        best = feasible[0]
        metric = study.user_attrs.get(keys.METRIC, "value")
        lines.append(
            f"  best trial {best.number}: val {metric} {quality_value(best):.4f}, widths "
            f"{best.user_attrs.get(keys.WIDTHS)}, {best.user_attrs.get(keys.N_PARAMS, '?')} parameters"
        )
        lines += [f"  {line}" for line in front_lines(study)]
        budget = epoch_budget(study)
        if budget is not None and budget.too_short:
            lines.append(f"  {budget.hint()}")
    else:
        lines.append("  no completed trial yet")
    return "\n".join(lines)
