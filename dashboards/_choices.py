"""The report's answers to "one backbone or both" and "softmax or one-vs-rest" (issue #24), from stored trials.

Each searched choice (`[space] blocks`, `[space] head`) is judged by the best validation value of the complete
trials that made it, with how many trials that is: the sampler gave each choice its own trials, so this is
a comparison of best-of-n, not of paired seeds, and the line says so. A choice the space did not search
gives no line.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from archsearch.stats import format_number
from archsearch.storage import keys

__all__ = ["choice_lines"]

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
