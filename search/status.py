"""`archsearch status`: what a study holds, as plain text for a terminal."""

from __future__ import annotations

import math
import shutil

import optuna
from optuna.trial import TrialState

from archsearch.base import ArchsearchError, is_int
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

__all__ = [
    "StatusError",
    "check_top",
    "comparison_lines",
    "counts_line",
    "front_lines",
    "study_status",
    "top_trials",
    "trial_counts",
]


class StatusError(ArchsearchError, ValueError):
    """An option of `archsearch status` out of its range."""


FRONT_SHOWN = 8  # front members listed by `status` and `search`; the report's table has them all


def front_lines(study: optuna.Study) -> list[str]:
    """A multi-objective study's Pareto front, smallest first, and its infeasible trials; [] for one objective."""
    from archsearch.stats import plural

    sizes = size_objectives(study)
    if not sizes:
        return []
    metric = study.user_attrs.get(keys.METRIC, "value")
    front = front_trials(quality_trials(study), maximizes(study), sizes)
    lines = [f"Pareto front of val {metric} and {', '.join(sizes)}: {plural(len(front), 'trial')}"]
    for t in front[:FRONT_SHOWN]:
        measured = ", ".join(f"{name} {size_value(t, name):,.4g}" for name in sizes)
        lines.append(f"  trial {t.number}: val {metric} {quality_value(t):.4f}, {measured}")
    if len(front) > FRONT_SHOWN:
        lines.append(f"  ... and {len(front) - FRONT_SHOWN} more (archsearch report draws them all)")
    infeasible = len(quality_trials(study, feasible_only=False)) - len(quality_trials(study))
    if infeasible:
        verb = "is" if infeasible == 1 else "are"
        lines.append(
            f"{plural(infeasible, 'complete trial')} over [study] max_latency_ms {verb} infeasible (never the best)"
        )
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


def comparison_lines(study: optuna.Study, *, width: int = 78) -> list[str]:
    """The best trial beside the knee and the linear baseline, on validation and test with their rows, and one
    sentence when test disagrees (`archsearch.stats.BestComparison`); nothing before a trial completes."""
    from archsearch.stats import compare_best

    # A sensitivity companion's runs repeat chosen architectures over seeds: no search to pick a best from.
    if len(study.directions) != 1 or study.user_attrs.get(keys.KIND) == keys.SENSITIVITY_KIND:
        return []
    comparison = compare_best(study)
    return comparison.lines(width) if comparison is not None else []


def check_top(top: int | None) -> None:
    """Refuse a `--top` below 1 (before any storage is opened)."""
    if top is not None and (not is_int(top) or top < 1):
        raise StatusError(
            f"The '--top' option must be an int >= 1 (how many of the best trials to list). Got {top!r} instead."
        )


def study_status(
    storage: optuna.storages.BaseStorage, name: str, *, url: str = "", top: int | None = None, width: int | None = None
) -> str:
    """A plain-text status report: counts by state, running trials with worker and heartbeat age, the best trial;
    with `top`, a table of the `top` best trials (`top_trials`). Lines fit `width` (default: the terminal's)."""
    check_top(top)
    width = shutil.get_terminal_size().columns if width is None else width
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
    feasible = quality_trials(study)
    if completed and feasible:
        best = feasible[0]
        metric = study.user_attrs.get(keys.METRIC, "value")
        lines.append(
            f"  best trial {best.number}: val {metric} {quality_value(best):.4f}, widths "
            f"{best.user_attrs.get(keys.WIDTHS)}, {best.user_attrs.get(keys.N_PARAMS, '?')} parameters"
        )
        lines += [f"  {line}" for line in comparison_lines(study, width=width - 2)]
        lines += [f"  {line}" for line in front_lines(study)]
        budget = epoch_budget(study)
        if budget is not None and budget.too_short:
            lines.append(f"  {budget.hint()}")
        if top is not None:
            lines += ["", *top_trials(study, top, width=width)]
    else:
        lines.append("  no completed trial yet")
    return "\n".join(lines)


def top_trials(study: optuna.Study, n: int, *, width: int = 80) -> list[str]:
    """The `n` best completed trials as a table, best first, like Keras Tuner's ``results_summary()``:
    architecture, parameters, validation and test metric, epochs trained and training time.

    The architecture column is cut (ending ``...``) where the table would be wider than `width`.
    """
    from archsearch.stats import format_duration, format_number, load_study_data, plural

    data = load_study_data(study)
    done = data.complete.sort_values(["score", "number"], ascending=[False, True])
    shown = done.head(n)
    head = ("rank", "trial", "architecture", "params", f"val {data.metric}", f"test {data.metric}", "epochs", "time")
    rows = [
        (
            str(rank),
            str(int(r["number"])),
            _architecture(r),
            f"{int(r['n_params']):,}" if math.isfinite(r["n_params"]) else "?",
            format_number(r["value"]),
            format_number(r["test_value"]),
            str(int(r["epochs_run"])) if math.isfinite(r["epochs_run"]) else "?",
            format_duration(r["train_seconds"]),
        )
        for rank, (_, r) in enumerate(shown.iterrows(), start=1)
    ]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    spare = width - (sum(widths) + 2 * (len(head) - 1))
    if spare < 0:
        widths[2] = max(len(head[2]), widths[2] + spare)
    lines = [
        "  ".join(_cell(cell, w, left=i == 2) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in (head, *rows)
    ]
    title = (
        f"The best {plural(len(rows), 'trial')} of {plural(len(done), 'completed trial')}, by validation {data.metric}:"
    )
    return [title, *lines]


def _architecture(row) -> str:
    """``64-32 relu, dropout 0.1/0`` or ``linear``."""
    widths = row["widths"]
    if widths is None:
        return "?"
    if not widths:
        return "linear"
    text = "-".join(str(int(w)) for w in widths) + (f" {row['activation']}" if row["activation"] else "")
    dropouts = row["dropouts"] or ()
    if any(d > 0 for d in dropouts):
        text += ", dropout " + "/".join(f"{d:g}" for d in dropouts)
    return text


def _cell(text: str, width: int, *, left: bool) -> str:
    if len(text) > width:
        text = text[: max(width - 3, 0)] + "..."
    return text.ljust(width) if left else text.rjust(width)


def _memory_line(study: optuna.Study) -> str | None:
    """The largest peak RSS and PSS any worker process reported with a finished trial, and how many reported.

    The PSS counts pages that processes share (such as the data a local pool maps once) once over all of
    them, so it is what a worker adds; the RSS counts them in every worker.
    """
    peaks: dict[str, dict[str, float]] = {keys.PEAK_RSS_MB: {}, keys.PSS_MB: {}}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        worker = str(trial.user_attrs.get(keys.WORKER, "?"))
        for key, per_worker in peaks.items():
            value = trial.user_attrs.get(key)
            if value is not None:
                per_worker[worker] = max(per_worker.get(worker, 0.0), float(value))
    rss, pss = peaks[keys.PEAK_RSS_MB], peaks[keys.PSS_MB]
    if not rss:
        return None
    n = len(rss)
    shared = f", PSS at a trial's end up to {max(pss.values()):,.0f} MB" if pss else ""
    return (
        f"  memory: peak RSS per worker process up to {max(rss.values()):,.0f} MB{shared} "
        f"({n} worker{'s' if n != 1 else ''} reporting)"
    )
