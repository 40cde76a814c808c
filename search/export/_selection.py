"""Greedy ensemble selection (Caruana et al., ICML 2004) over the networks a search stored.

The search keeps every complete trial's weights. Averaging the predictions of a few of them often beats
the best alone: the trials err on different rows. Which few, and with what weights, is chosen on the
validation split: start from the best trial, then repeatedly add (with replacement) the trial whose
addition gives the best validation metric of the running mean, and keep the prefix that scored best. A
trial added k times of n has weight k / n; a step that adds nothing better still runs (a later pair can
help where no single addition does), but only the best prefix is kept, so the result is never worse on
validation than the best trial alone, and is the best trial alone when nothing helps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archsearch.trainers.metrics import METRIC_DIRECTIONS, classification_metrics, regression_metrics

ROUNDS = 25  # picks, the first being the best trial; more than the distinct members it keeps at these counts


def greedy_selection(
    predictions: Sequence[np.ndarray],
    y_true: np.ndarray,
    metric: str,
    rounds: int = ROUNDS,
    *,
    log_offsets: Sequence[float] | None = None,
) -> tuple[list[int], float]:
    """Counts per candidate of the best prefix of greedy additions, and that prefix's validation metric.

    Args:
        predictions: Per candidate, class probabilities (n, n_classes) or predictions (n,) in the
            target's units, all on the same validation rows. Candidate 0 goes first (the chosen trial);
            ties go to the earlier candidate, so order them best first.
        y_true: Class indices (n,) or targets in the target's units (n,).
        metric: A key of `METRIC_DIRECTIONS`, scored as `classification_metrics`/`regression_metrics` do.
        rounds: Additions to try, >= 1.
        log_offsets: For networks trained with class weights, the calibration already applied to `predictions`
            (`archsearch.trainers.Calibration`): accuracy and balanced accuracy are then scored on the argmax of
            the mean less these offsets, the class-weighted decision the shipped model's `predict` takes, and
            log loss on the calibrated mean itself.

    Returns:
        (counts, value): `counts[i]` is how often candidate i was added (weights are counts / sum); `value`
        is the metric of that weighted mean on the validation rows, infinite when no prefix scored a
        finite value (the best trial alone then).

    Example:
        >>> y = np.array([0, 1, 1, 0])
        >>> a = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.6, 0.4]])  # row 2 wrong
        >>> b = np.array([[0.4, 0.6], [0.1, 0.9], [0.1, 0.9], [0.9, 0.1]])  # row 0 wrong
        >>> greedy_selection([a, b], y, "accuracy", rounds=4)
        ([1, 1], 1.0)
    """
    if metric not in METRIC_DIRECTIONS:
        raise ValueError(
            f"The 'metric' parameter of greedy_selection must be one of {sorted(METRIC_DIRECTIONS)}. Got {metric!r} instead."
        )
    if not predictions:
        raise ValueError("The 'predictions' parameter of greedy_selection must hold at least one candidate. Got none.")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"The 'rounds' parameter of greedy_selection must be an int >= 1. Got {rounds!r} instead.")
    shapes = {np.shape(p) for p in predictions}
    if len(shapes) != 1 or next(iter(shapes))[0] != len(y_true):
        raise ValueError(
            f"The 'predictions' parameter of greedy_selection must hold arrays of one shape with {len(y_true)} rows "
            f"(the validation rows). Got shapes {sorted(shapes)} instead."
        )
    sign = 1.0 if METRIC_DIRECTIONS[metric] == "maximize" else -1.0
    classification = np.ndim(predictions[0]) == 2

    # mean * exp(-offsets) has the argmax of log(mean) - offsets, predict's decision; its scale does not matter.
    undo = None if log_offsets is None or metric == "log_loss" else np.exp(-np.asarray(log_offsets))

    def score(mean: np.ndarray) -> float:
        if undo is not None:
            mean = mean * undo  # (n, n_classes)
        values = classification_metrics(y_true, mean) if classification else regression_metrics(y_true, mean)
        value = sign * values[metric]
        return value if np.isfinite(value) else -np.inf  # a NaN must never win a comparison by losing them all

    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in predictions])  # (candidates, n[, classes])
    # The first pick is candidate 0 (the chosen trial), so the best trial is always a member.
    counts = [1] + [0] * (len(predictions) - 1)
    total = stacked[0].copy()
    best_score, best_counts = score(total), list(counts)
    for step in range(2, rounds + 1):
        scores = [score((total + candidate) / step) for candidate in stacked]
        pick = int(np.argmax(scores))  # the first of equal scores
        total += stacked[pick]
        counts[pick] += 1
        if scores[pick] > best_score + 1e-12:
            best_score, best_counts = scores[pick], list(counts)
    return best_counts, sign * best_score  # +-inf where no prefix scored a finite value
