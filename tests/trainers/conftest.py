"""What the trainer tests share: small prepared data built from arrays, as `load_data` would prepare it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archsearch.trainers.data import PreparedData, Preprocessing


def standardized(
    x: np.ndarray,
    y: np.ndarray,
    classes: tuple | None,
    *,
    names: Sequence[str] | None = None,
    scale_target: bool = True,
) -> PreparedData:
    """Rows split 60/20/20 in order and standardized with the training split's statistics, as `load_data` does.

    Args:
        classes: The class labels, or None for a regression, whose target is standardized too unless
            `scale_target` is False.
        names: The input columns' names (default x0, x1, ...).
    """
    x = x.astype(np.float32)
    train, val = int(0.6 * len(x)), int(0.8 * len(x))
    mean, scale = x[:train].mean(axis=0), x[:train].std(axis=0)
    z = ((x - mean) / scale).astype(np.float32)
    target_mean, target_scale = 0.0, 1.0
    if classes is None:
        if scale_target:
            target_mean, target_scale = float(y[:train].mean()), float(y[:train].std())
        y = ((y - target_mean) / target_scale).astype(np.float32)
    else:
        y = y.astype(np.int64)
    names = tuple(names or (f"x{i}" for i in range(x.shape[1])))
    preprocessing = Preprocessing(
        task="regression" if classes is None else "classification",
        columns=names,
        categorical={},
        encoded_names=names,
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        fill_values={},
        classes=classes,
        target_mean=target_mean,
        target_scale=target_scale,
    )
    return PreparedData(
        "tiny", z[:train], y[:train], z[train:val], y[train:val], z[val:], y[val:], preprocessing, raw_test=x[val:]
    )
