"""The output head of a classifier: one softmax over the classes, or one sigmoid per class ("one_vs_rest").

A one-vs-rest head trains each class's output as its own binary classifier (binary cross-entropy against the
one-hot label). Its probabilities are the sigmoids normalised to sum 1, which is the softmax of the
log-sigmoids: so in eval mode the head outputs log-sigmoids and every reader of a network's outputs
(metrics, calibration, the exported program, `Predictor.predict_proba`) treats them as logits, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HEADS", "OneVsRest", "one_vs_rest_loss"]

HEADS = ("softmax", "one_vs_rest")


class OneVsRest(nn.Module):
    """Raw per-class scores while training (the loss takes them); their log-sigmoids in eval mode."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.training else F.logsigmoid(z)  # (batch, n_classes)


def one_vs_rest_loss(
    n_classes: int, weight: torch.Tensor | None, label_smoothing: float
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Binary cross-entropy of each class's output against its one-hot label, summed over classes and
    averaged over rows; label smoothing moves each target by `label_smoothing / 2` toward 1/2."""

    def loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = F.one_hot(y, n_classes).to(z.dtype)  # (batch, n_classes)
        target = target * (1 - label_smoothing) + label_smoothing / 2
        per_class = F.binary_cross_entropy_with_logits(z, target, reduction="none")  # (batch, n_classes)
        if weight is not None:  # a row counts with its class's weight, as in weighted cross-entropy
            per_row = per_class.sum(dim=1) * weight[y]
            return per_row.sum() / weight[y].sum()
        return per_class.sum(dim=1).mean()

    return loss
