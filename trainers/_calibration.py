"""Probabilities for the data's class frequencies from networks trained with class weights (no torch here).

A network trained with per-class loss weights ``w_k`` (``class_weight = "balanced"``: ``w_k = n / (K n_k)``, so
every class weighs the same in the loss) learns the posterior of a world where class k is ``w_k`` times as
frequent: ``q_k(x) ∝ w_k p_k(x)``. Its softmax is not a probability for the data: on the Caravan table (6% of
rows "Yes"), the mean P(Yes) was 0.496. Dividing by the weights undoes it, ``p_k ∝ q_k / w_k``; in log space
that is a constant offset ``-log w_k`` added to every row's logits (the prior correction of Saerens et al.,
2002). That holds at the loss's optimum; a network stopped early for its balanced accuracy, or trained with
label smoothing (which the search samples), is not there, and its class rates stay off by 3 to 8 points. So
each network also gets per-class biases fitted, by log loss, on the rows it was trained on (never the test
rows): its mean predicted probability of each class then equals that class's share of those rows.

The exported program adds offsets and biases to each network's logits (before an ensemble's mean), so its
softmax is a probability; ``predict`` decides by the class-weighted posterior ``w_k p_k``, the argmax of the
output less the offsets, which is the rule balanced accuracy asks for.

Measured on held-out rows (benchmarks/calibration.py, BENCHMARKS.md section 11; n = 12 networks per row: 2
split seeds x 2 networks x label smoothing 0, 0.1, 0.2): on Caravan the offsets alone missed the class rates
by 4.1 to 4.2 points on average (worst 12.6), with the fitted biases by 0.3 (worst 0.7), search and refit
networks alike, at the lowest log loss; biases fitted on the validation rows did as well for the search's
networks but not for the refit that export ships (0.8, worst 3.1), which trains on those rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.trainers._errors import ExportError

__all__ = ["CLASS_WEIGHTED", "Calibration", "balanced_class_weights", "class_weight_offsets", "fit_biases"]

# What `Predictor.predict` decides by when a calibration is applied: the class-weighted posterior.
CLASS_WEIGHTED = "argmax of the class-weighted posterior"


def balanced_class_weights(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class loss weights ``n / (K n_k)`` (scikit-learn's "balanced"); 0 for a class absent from training.

    >>> balanced_class_weights(np.array([0, 0, 0, 1]), 2).tolist()
    [0.6666666666666666, 2.0]
    """
    counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_classes)  # (n_classes,)
    return np.where(counts > 0, len(y_train) / (n_classes * np.maximum(counts, 1)), 0.0)


def class_weight_offsets(y_train: np.ndarray, n_classes: int) -> tuple[float, ...]:
    """``-log w_k`` of the balanced weights of the rows labelled `y_train`: the prior correction.

    >>> [round(v, 4) for v in class_weight_offsets(np.array([0, 0, 0, 1]), 2)]  # log(3/2), log(1/2)
    [0.4055, -0.6931]
    """
    weights = balanced_class_weights(y_train, n_classes)
    if np.any(weights <= 0):
        counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_classes)
        missing = [k for k in range(n_classes) if counts[k] == 0]
        raise ExportError(
            f"Classes {missing} have no training row, so their class weight, and its correction, is undefined."
        )
    return tuple(float(-np.log(w)) for w in weights)


def fit_biases(logits: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """Per-class biases (the first 0) minimizing the log loss of ``softmax(logits + biases)`` on rows ``y``.

    At the minimum each class's mean predicted probability equals its share of the rows (the gradient is
    their difference). Convex in the K - 1 free biases; scipy's BFGS with the exact gradient.
    """
    from scipy.optimize import minimize  # lazy, like the rest of scipy in archsearch
    from scipy.special import log_softmax

    logits = np.asarray(logits, dtype=np.float64)  # (n, n_classes)
    n, n_classes = logits.shape
    share = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes) / n

    def loss(free: np.ndarray) -> tuple[float, np.ndarray]:
        log_p = log_softmax(logits + np.concatenate([[0.0], free]), axis=1)
        gradient = np.exp(log_p).mean(axis=0) - share
        return float(-log_p[np.arange(n), y].mean()), gradient[1:]

    result = minimize(loss, np.zeros(n_classes - 1), jac=True, method="BFGS")
    return (0.0, *(float(b) for b in result.x))


@dataclass(frozen=True)
class Calibration:
    """How class-weighted networks' outputs become probabilities of the data's class frequencies.

    Attributes:
        class_weight: The class weighting the networks trained with ("balanced").
        train_class_counts: Rows of each class among those the biases were fitted on.
        log_offsets: ``-log w_k``, added to every network's logits; `predict` takes them off again to decide.
        biases: Per network (one per ensemble member), per class, added to its logits after the offsets.
    """

    class_weight: str
    train_class_counts: tuple[int, ...]
    log_offsets: tuple[float, ...]
    biases: tuple[tuple[float, ...], ...]

    @property
    def decision(self) -> str:
        """What `predict` decides by (see the module docstring)."""
        return CLASS_WEIGHTED

    def member(self, index: int) -> Calibration:
        """The calibration of network `index` alone."""
        return Calibration(self.class_weight, self.train_class_counts, self.log_offsets, (self.biases[index],))

    def shifts(self, index: int) -> np.ndarray:
        """What network `index`'s logits get added: offsets plus its biases, (n_classes,)."""
        return np.asarray(self.log_offsets) + np.asarray(self.biases[index])

    def to_dict(self) -> dict[str, Any]:
        """`architecture.json`'s "calibration" entry; `from_dict` inverts it."""
        return {
            "method": "prior correction, then per-class biases fitted on the training rows",
            "class_weight": self.class_weight,
            "train_class_counts": list(self.train_class_counts),
            "log_offsets": list(self.log_offsets),
            "biases": [list(b) for b in self.biases],
            "decision": self.decision,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Read `to_dict`'s output back; a malformed entry is an ExportError naming the key."""
        try:
            offsets = tuple(float(v) for v in data["log_offsets"])
            counts = tuple(int(v) for v in data["train_class_counts"])
            class_weight = str(data["class_weight"])
            biases = tuple(tuple(float(v) for v in b) for b in data["biases"])
        except (KeyError, TypeError, ValueError) as e:
            raise ExportError(
                f"The 'calibration' entry must hold class_weight, train_class_counts, log_offsets, biases: {e}"
            ) from e
        values = [*offsets, *(v for b in biases for v in b)]
        if not biases or any(len(v) != len(counts) for v in (offsets, *biases)) or not all(map(math.isfinite, values)):
            raise ExportError(
                f"The 'calibration' entry's log_offsets and biases must be finite numbers, one per class "
                f"({len(counts)}), and biases one list per network. Got {list(offsets)} and {[list(b) for b in biases]}."
            )
        return cls(class_weight, counts, offsets, biases)

    def describe(self) -> str:
        """One sentence for `describe_export`, with the class frequencies and their n."""
        total = sum(self.train_class_counts)
        shares = ", ".join(f"{count / total:.3f}" for count in self.train_class_counts)
        return (
            f"Probabilities are corrected for class_weight = {self.class_weight!r} (prior correction, then "
            f"per-class biases fitted on the {total:,} training rows): predict_proba and model.pt2's softmax give "
            f"probabilities for their class frequencies ({shares}); predict takes the {self.decision}, the rule "
            "of balanced accuracy."
        )


def decision_scores(outputs: np.ndarray, calibration: Calibration | None) -> np.ndarray:
    """The scores `predict` takes the argmax of: the outputs less the offsets, the class-weighted posterior."""
    if calibration is None:
        return outputs
    return outputs - np.asarray(calibration.log_offsets)


def check_networks(calibration: Calibration, n_networks: int, n_classes: int) -> None:
    """Refuse a calibration made for another number of networks or classes than the model's."""
    if len(calibration.biases) != n_networks or len(calibration.log_offsets) != n_classes:
        raise ExportError(
            f"The calibration must hold {n_classes} offsets and one list of biases per network ({n_networks}). Got "
            f"{len(calibration.log_offsets)} offsets and {len(calibration.biases)} lists of biases instead."
        )
