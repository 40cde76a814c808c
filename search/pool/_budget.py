"""How long the export's refit of a trial takes, and when a search with a timeout stops starting trials.

`export` refits the chosen trial on train + validation rows by default (archsearch.export._refit). With a timeout,
that refit used to come after the whole timeout: the default search then export ran 5 to 51 s past the
timeout on the quality benchmark's tables (BENCHMARKS.md section 6). With `[study] reserve_refit` (the
default) a worker stops starting trials once the time left is what the refit of the best trial so far
would take, predicted from that trial's own training time: its seconds per epoch, times the refit's
epochs, times the refit's rows over the rows it trained on. Trials still running then stop at the end of
their current epoch, as pruned with the reason (`time_up_reason`): a trial started just before would
otherwise run on into the refit's time. The search keeps at least half its timeout for trials
(`REFIT_RESERVE_CAP`). With `reserve_refit = false` a search stops starting trials at the timeout and lets
running ones finish, as Optuna's `timeout` does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TextIO

import optuna

from archsearch.storage import best_quality_trial, keys

__all__ = ["REFIT_RESERVE_CAP", "AskDeadline", "fit_rows", "refit_epochs", "refit_seconds"]

# The reserve never exceeds this share of the timeout: a search keeps at least half its time for trials,
# even when its best trial so far was slow (and a prediction from one trial can be far off).
REFIT_RESERVE_CAP = 0.5


def fit_rows(study_data: Mapping[str, Any], folds: int | None) -> int:
    """Rows each network of the search trained on: the training split, or (k-1)/k of train + val with k folds.

    Args:
        study_data: The study's `data` attribute (`n_train`, `n_val`, ...).
        folds: The study's [data] folds.
    """
    if folds is None:
        return int(study_data["n_train"])
    return round((study_data["n_train"] + study_data["n_val"]) * (folds - 1) / folds)


def refit_epochs(best_epoch: int | None, n_fit: int, n_refit: int, *, fallback: int, keep: str = "epochs") -> int:
    """Epochs for a refit on `n_refit` rows of a network whose early stopping chose `best_epoch` on `n_fit` rows.

    Args:
        best_epoch: The trial's best epoch; None (a trial without one) uses `fallback`.
        n_fit: Rows the search trained it on (`fit_rows`).
        n_refit: Rows the refit trains on.
        fallback: The study's [train] epochs.
        keep: "epochs" keeps the passes over the data (the default, see archsearch.export._refit); "steps"
            keeps the optimizer steps, i.e. scales the epochs by n_fit / n_refit.

    Example:
        >>> refit_epochs(12, 600, 800, fallback=30), refit_epochs(12, 600, 800, fallback=30, keep="steps")
        (12, 9)
    """
    if keep not in ("epochs", "steps"):
        raise ValueError(
            f"The 'keep' parameter of refit_epochs must be one of 'epochs', 'steps'. Got {keep!r} instead."
        )
    epochs = int(best_epoch or fallback)
    if keep == "steps":
        epochs = round(epochs * n_fit / n_refit)
    return max(epochs, 1)


def refit_seconds(
    attrs: Mapping[str, Any], study_data: Mapping[str, Any], folds: int | None, epochs: int
) -> float | None:
    """Predicted seconds of the export's refit of a trial with these user attributes; None without a timing.

    Args:
        attrs: The trial's user attributes (`train_seconds`, `epochs_run`, `best_epoch`).
        study_data: The study's `data` attribute.
        folds: The study's [data] folds (a trial on k folds counts the epochs and seconds of all k networks).
        epochs: The study's [train] epochs (the refit's epochs for a trial without a best epoch).

    Example:
        >>> refit_seconds({"train_seconds": 10.0, "epochs_run": 20, "best_epoch": 16}, {"n_train": 600, "n_val": 200}, None, 30)
        10.666666666666666
    """
    seconds, epochs_run = attrs.get(keys.TRAIN_SECONDS), attrs.get(keys.EPOCHS_RUN)
    if not seconds or not epochs_run or "n_train" not in study_data:
        return None
    n_fit = fit_rows(study_data, folds)
    n_refit = int(study_data["n_train"]) + int(study_data["n_val"])
    per_epoch = float(seconds) / int(epochs_run)
    return per_epoch * refit_epochs(attrs.get(keys.BEST_EPOCH), n_fit, n_refit, fallback=epochs) * n_refit / n_fit


class AskDeadline:
    """When a worker's search ends: at the deadline, or earlier by the best trial's refit time.

    A worker asks `passed` before each trial, and with the reserve `time_up` after every epoch of a running
    trial, which then stops there (as pruned): otherwise a trial started just before the end would run on
    into the refit's time. The study's best trial is read only in the last `REFIT_RESERVE_CAP` of the
    timeout, where the reserve can matter, and at most once per `REREAD_SECONDS`; once passed, it stays
    passed. The prediction assumes the study's default export: a refit of the best trial, `members` times
    (`[export] ensemble_seeds`); `--no-refit` needs no reserve, `--trial N` or `--ensemble K` another one.
    """

    REREAD_SECONDS = 2.0

    def __init__(
        self,
        study: optuna.Study,
        deadline: float | None,
        *,
        timeout: float | None,
        reserve: bool,
        folds: int | None,
        epochs: int,
        members: int = 1,
        log: TextIO | None = None,
        label: str = "",
    ):
        self.study, self.deadline, self.timeout, self.members = study, deadline, timeout, members
        self.reserve = reserve and deadline is not None and bool(timeout)
        self.folds, self.epochs, self.log, self.label = folds, epochs, log, label
        self._passed = False
        self._reserved = False  # passed because of the refit's reserve (not the bare deadline)
        self._needed: tuple[int, float] | None = None  # (trial number, refit seconds) of the last read
        self._read_at = -float("inf")
        self._sizes: Mapping[str, Any] | None = None  # the study's data sizes, read once

    def passed(self) -> bool:
        """Whether the search is over: no new trial starts, and (with the reserve) running ones stop."""
        if self._passed or self.deadline is None:
            return self._passed
        left = self.deadline - time.time()
        if left <= 0:
            self._passed = True
            # Past the deadline itself, running trials stop too once there is a trial to refit, even if no
            # ask saw the reserve's window (a fused worker asks only at the end of its epoch rounds).
            self._reserved = self.reserve and self._best_refit() is not None
            return True
        if not self.reserve or left > REFIT_RESERVE_CAP * self.timeout:
            return False
        if time.monotonic() - self._read_at >= self.REREAD_SECONDS:
            self._read_at = time.monotonic()
            self._needed = self._best_refit()
        if self._needed is None or left > self._needed[1]:
            return False
        self._passed = self._reserved = True
        if self.log is not None:
            number, needed = self._needed
            seeds = f" ({self.members} seeds, [export] ensemble_seeds)" if self.members > 1 else ""
            self.log.write(
                f"{time.strftime('%H:%M:%S')} {self.label} no new trials with {left:.0f} s of the timeout left: "
                f"the export's refit of trial {number}{seeds} needs about {needed:.0f} s ([study] reserve_refit)\n"
            )
            self.log.flush()
        return True

    def time_up(self) -> bool:
        """Whether running trials should stop now: once the reserve began, or the deadline passed with a trial
        to refit. A search whose deadline comes before any trial completed (nothing to refit) lets its running
        trial finish (a fused worker only its most promising one, see `_fused_worker._keep_most_promising`)."""
        return self.passed() and self._reserved

    def _best_refit(self) -> tuple[int, float] | None:
        try:
            best = best_quality_trial(self.study)  # one read of the best trial's row for one objective
        except ValueError:  # no complete trial yet: nothing to refit
            return None
        if self._sizes is None:
            self._sizes = self.study.user_attrs.get(keys.DATA, {})
        needed = refit_seconds(best.user_attrs, self._sizes, self.folds, self.epochs)
        return None if needed is None else (best.number, needed * self.members)
