"""The per-slot pieces of a population's training step: each slot's loss and its gradient clipping.

Both are computed for all slots at once and equal what `train_mlp` computes for one network: the loss of
`F.cross_entropy` with the slot's label smoothing and the group's class weights (or the MSE of a
regression), and `clip_grad_norm_` over all of the slot's parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from archsearch.trainers.data import PreparedData
from archsearch.trainers.engine import TrainSettings, class_weights
from archsearch.trainers.fused._group import FusedGroup

__all__ = ["StackedClip", "StackedLoss"]


class StackedLoss:
    """Per-slot mean loss (capacity,) of outputs (capacity, batch, n_outputs), as train_mlp's loss."""

    def __init__(self, data: PreparedData, group: FusedGroup, device: torch.device):
        self.regression = data.task == "regression"
        self.device = device
        # None for regression, where train_mlp's loss is MSE and class_weight plays no part.
        self.class_weights = None if self.regression else class_weights(data, group.class_weight, device)
        self.set_occupants([None])

    def set_occupants(self, settings: Sequence[TrainSettings | None]) -> None:
        """Each row's label smoothing (None: an empty slot)."""
        smoothing = [0.0 if s is None else s.label_smoothing for s in settings]
        self._smoothing = torch.tensor(smoothing, device=self.device)  # (capacity,)
        self._smoothing_any = any(eps > 0 for eps in smoothing)

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.regression:
            return ((out.squeeze(2) - y) ** 2).mean(dim=1)
        capacity, batch, n_classes = out.shape
        weights = self.class_weights
        per_row = F.cross_entropy(out.reshape(-1, n_classes), y.reshape(-1), weight=weights, reduction="none").view(
            capacity, batch
        )
        # cross_entropy's weighted mean divides by the summed weights of the batch's classes.
        total = float(batch) if weights is None else weights[y].sum(dim=1)  # (capacity,)
        nll = per_row.mean(dim=1) if weights is None else per_row.sum(dim=1) / total
        if not self._smoothing_any:
            return nll
        # cross_entropy(label_smoothing=eps) = (1 - eps) * nll + eps / n_classes * the (weighted) sum of
        # -log p over every class, averaged with the same denominator as nll.
        log_p = F.log_softmax(out, dim=2)  # (capacity, batch, n_classes)
        spread = -(log_p if weights is None else log_p * weights).sum(dim=2).sum(dim=1) / total  # (capacity,)
        eps = self._smoothing
        # A slot without smoothing keeps the plain loss, as cross_entropy skips the term when eps is 0.
        return torch.where(eps > 0, (1 - eps) * nll + spread * (eps / n_classes), nll)


class StackedClip:
    """Each clipping slot's gradient row (capacity, n_params) scaled as clip_grad_norm_ over its parameters."""

    def __init__(self, device: torch.device):
        self.device = device
        self.set_occupants([None])

    def set_occupants(self, settings: Sequence[TrainSettings | None]) -> None:
        """Each row's largest gradient norm (None: an empty slot, which never clips)."""
        clips = [math.inf if s is None or s.grad_clip is None else s.grad_clip for s in settings]
        self._max_norm = torch.tensor(clips, device=self.device)  # (capacity,)
        self._clipped = torch.isfinite(self._max_norm)  # (capacity,)
        self.active = any(s is not None and s.grad_clip is not None for s in settings)

    def __call__(self, grads: torch.Tensor) -> torch.Tensor:
        # One norm over the slot's whole row, as clip_grad_norm_ takes over all of a model's parameters;
        # padded entries are zero and leave the norm unchanged.
        norms = torch.linalg.vector_norm(grads, dim=1)  # (capacity,)
        scale = (self._max_norm / (norms + 1e-6)).clamp(max=1.0)
        return grads * torch.where(self._clipped, scale, 1.0).unsqueeze(1)
