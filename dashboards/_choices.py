"""The report's answers to "one backbone or both", "softmax or one-vs-rest" and "linear model or hidden layers"
(issue #24), from stored trials and the study's last sensitivity analysis.

Each searched choice (`[space] blocks`, `[space] head`) is judged by the best validation value of the complete
trials that made it, with how many trials that is: the sampler gave each choice its own trials, so this is
a comparison of best-of-n, not of paired seeds, and the line says so. A choice the space did not search
gives no line. "Linear model or hidden layers" is answered with paired seeds where `archsearch sensitivity` ran:
its linear neighbour of a centre with hidden layers (or its one-hidden-layer neighbours of a linear centre) was
trained with the centre's seeds, and the line quotes that verdict with its n.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from archsearch.stats import format_number
from archsearch.storage import keys, sensitivity_result

__all__ = ["choice_lines", "depth_lines"]

# (label in the report, trial attribute, value of a trial without it, the question answered)
_CHOICES = (
    ("Blocks", keys.BLOCKS, None, "one feature block or several"),
    ("Head", keys.HEAD, "softmax", "softmax or one sigmoid per class"),
)


def choice_lines(study: optuna.Study) -> list[str]:
    """One Markdown bullet per searched choice: best value per option with its n, and the verdict."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not trials or len(study.directions) != 1:
        return []
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    metric = study.user_attrs.get(keys.METRIC, "value")
    lines = []
    for label, key, default, question in _CHOICES:
        if not any(key in t.params for t in trials):  # the parameter has the attribute's name
            continue
        best: dict[str, list[float]] = {}
        for trial in trials:
            value = trial.user_attrs.get(key, default)
            name = "+".join(value) if isinstance(value, list) else str(value)
            best.setdefault(name, []).append(trial.value)
        if len(best) < 2:
            continue
        pick = max if maximize else min
        ranked = sorted(best, key=lambda name: pick(best[name]), reverse=maximize)
        listed = ", ".join(f"{name} {format_number(pick(best[name]))} (n = {len(best[name])})" for name in ranked)
        margin = abs(pick(best[ranked[0]]) - pick(best[ranked[1]]))
        lines.append(
            f"- {label} ({question}): best validation {metric} per choice {listed}; verdict: {ranked[0]}, "
            f"{format_number(margin)} ahead of {ranked[1]} (best of each choice's trials, not paired seeds)."
        )
    return lines


def depth_lines(study: optuna.Study) -> list[str]:
    """ "Linear model or hidden layers" with paired seeds, one bullet per sensitivity centre that answers it; when
    no analysis did, one bullet saying how to get that answer (only where the study has both kinds of trial)."""
    result = sensitivity_result(study)
    lines = [line for centre in (result or {}).get("centres", []) if (line := _paired_depth_line(centre, result))]
    if lines or len(study.directions) != 1:
        return lines
    depths = {
        bool(t.user_attrs.get(keys.DEPTH)) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    if depths != {False, True}:
        return []
    return [
        "- Linear model or hidden layers: the comparison above is best trial against best trial, not paired seeds; "
        f"`archsearch sensitivity --study {study.study_name}` retrains the best trial and its linear neighbour with "
        "the same seeds, and this report then quotes its verdict."
    ]


def _paired_depth_line(centre: dict, result: dict) -> str | None:
    linear = not centre["widths"]
    compared = [
        n
        for n in centre["neighbours"]
        if n["effect"] is not None and (n["kind"] == "hidden_layer" if linear else not n["widths"])
    ]
    if not compared:
        return None
    metric, parts = result["metric"], []
    for n in compared:
        e = n["effect"]
        name = n["change"] if linear else "the linear model (fitted with the centre's hyperparameters)"
        # The stored dict writes an unbounded end (too few seeds to reject any shift) as None.
        if e["ci_low"] is None or e["ci_high"] is None:
            interval = f"its 95% interval unbounded at n = {e['n']}"
        else:
            interval = (
                f"95% interval [{format_number(e['ci_low'], signed=True)}, {format_number(e['ci_high'], signed=True)}]"
            )
        parts.append(f"{name}: {e['label']}, {metric} {format_number(e['mean'], signed=True)} ({interval})")
    n = max(e["effect"]["n"] for e in compared)
    shape = "a linear model" if linear else f"hidden layers {centre['widths']}"
    return (
        f"- Linear model or hidden layers, paired seeds (sensitivity centre trial {centre['trial']}, {shape}; "
        f"differences from it over n = {n} seeds): " + "; ".join(parts) + "."
    )
