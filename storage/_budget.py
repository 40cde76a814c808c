"""Whether the epoch budget cut a study's best trials short, for `archsearch status` and the report."""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from archsearch.storage import keys

__all__ = ["EpochBudget", "epoch_budget", "still_improving"]

N_BEST = 5  # the best trials looked at: one lucky trial at the cap is no reason to train every trial longer


def still_improving(best_epoch: int | None, epochs_run: int, epochs: int) -> bool:
    """Whether a run used the whole budget and found its best epoch in the last tenth of it (at least the last epoch).

    Example:
        >>> still_improving(best_epoch=29, epochs_run=30, epochs=30), still_improving(12, 30, 30)
        (True, False)
    """
    return best_epoch is not None and epochs_run == epochs and best_epoch > epochs - max(1, math.ceil(epochs / 10))


@dataclass(frozen=True)
class EpochBudget:
    """How many of the best completed trials were still improving when the epoch budget ended."""

    epochs: int  # the study's [train] epochs
    n_best: int  # best completed trials looked at
    n_still_improving: int  # of those, the ones `still_improving` holds for

    @property
    def too_short(self) -> bool:
        """True when most of the best trials were still improving: more epochs would likely pay."""
        return self.n_still_improving > self.n_best / 2

    def hint(self) -> str | None:
        """One sentence for a status or report line when the budget is too short, else None."""
        if not self.too_short:
            return None
        return (
            f"{self.n_still_improving} of the {self.n_best} best trials were still improving at the last epoch "
            f"({self.epochs}): raise `epochs`."
        )


def epoch_budget(study: optuna.Study) -> EpochBudget | None:
    """Count the best completed trials still improving at the cap; None without a stored budget or a completed trial."""
    epochs = study.user_attrs.get(keys.CONFIG, {}).get("train", {}).get("epochs")
    if not isinstance(epochs, int) or len(study.directions) != 1:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    completed = [t for t in completed if keys.EPOCHS_RUN in t.user_attrs]
    best = sorted(completed, key=lambda t: t.value, reverse=maximize)[:N_BEST]
    if not best:
        return None
    n = sum(still_improving(t.user_attrs.get(keys.BEST_EPOCH), t.user_attrs[keys.EPOCHS_RUN], epochs) for t in best)
    return EpochBudget(epochs=epochs, n_best=len(best), n_still_improving=n)
