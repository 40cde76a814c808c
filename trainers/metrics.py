"""Metrics on plain arrays, and which way each one is optimized (no torch here).

Every metric is computed in the target's original units, so the numbers stored in the study mean the
same thing to a user as scikit-learn's functions of the same name.
"""

from __future__ import annotations

import math

import numpy as np

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "log_loss")
REGRESSION_METRICS = ("rmse", "r2")
METRIC_DIRECTIONS = {
    "accuracy": "maximize",
    "balanced_accuracy": "maximize",
    "log_loss": "minimize",
    "rmse": "minimize",
    "r2": "maximize",
}

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "METRIC_DIRECTIONS",
    "classification_metrics",
    "regression_metrics",
]


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and log loss from class indices and predicted probabilities.

    Args:
        y_true: Class indices, shape (n,).
        proba: Predicted probabilities, shape (n, n_classes).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    predicted = proba.argmax(axis=1)
    correct = predicted == y_true
    recalls = [correct[y_true == c].mean() for c in range(n_classes) if np.any(y_true == c)]
    eps = 1e-15
    picked = np.clip(proba[np.arange(len(y_true)), y_true], eps, 1.0)
    return {
        "accuracy": float(correct.mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "log_loss": float(-np.log(picked).mean()),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Root mean squared error and R2 of predictions, both in the target's units."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    residual = float(np.sum((y_true - y_pred) ** 2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else -math.inf)
    return {"rmse": math.sqrt(residual / len(y_true)), "r2": r2}
