"""A linear/softmax model fitted as scikit-learn fits one: full-batch L-BFGS on an L2-penalized loss (issue #24).

A network without hidden layers or embedding is a convex problem. Trained like the hidden-layer networks
(a sampled Adam learning rate, a few mini-batch steps an epoch), it stopped far from its optimum: on 626
rows of frozen CNN features the search's linear trials reached 0.77 to 0.90 validation accuracy where
logistic regression reached 0.96 (BENCHMARKS.md section 14), so "hidden layers beat the linear model"
measured the optimizer, not depth. L-BFGS with a strong-Wolfe line search converges on such problems in
tens of iterations; the trial's sampled `weight_decay` is the L2 coefficient on the mean loss (what
scikit-learn's `1 / (C * n_rows)` is), so the search tunes the linear model's regularization as
`LogisticRegressionCV` would, and early stopping on validation still keeps the best iterate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from archsearch.trainers.data import PreparedData
from archsearch.trainers.engine import RunProgress, TrainSettings, wants_lbfgs

__all__ = ["LBFGS_ITERATIONS", "MAX_PASS_MACS", "lbfgs_epochs", "lbfgs_fits"]

LBFGS_ITERATIONS = 4  # L-BFGS iterations per epoch (each one or a few full passes over the training rows)
HISTORY = 20  # curvature pairs kept (scikit-learn's lbfgs keeps 10)
CONVERGED = 1e-9  # relative change of the penalized loss below which an epoch counts as converged
# Above this many multiply-adds a pass (rows x inputs x outputs: 40,000 x 2,048 x 1,000 is 8e10), an epoch of L-BFGS
# iterations costs several of the optimizer's epochs, each of which takes hundreds of mini-batch steps anyway:
# the linear model trains with the trial's optimizer there, as scikit-learn users switch to SGD on such data.
MAX_PASS_MACS = 2e9


def lbfgs_fits(net, linear_solver: str, data: PreparedData) -> bool:
    """`wants_lbfgs`, on data whose full pass is cheap enough for full-batch iterations (`MAX_PASS_MACS`); a trial
    records it before training, from the `[train] linear_solver` value."""
    return wants_lbfgs(net, linear_solver) and len(data.x_train) * data.n_features * data.n_outputs <= MAX_PASS_MACS


def lbfgs_epochs(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    settings: TrainSettings,
    progress: RunProgress,
    validation_value: Callable[[], float],
    keep_best: Callable[[], None],
) -> tuple[str, str | None]:
    """Fit `model` on all of (x, y), `LBFGS_ITERATIONS` iterations an epoch, until the run ends or converges."""
    # Weight matrices only: scikit-learn does not penalize the intercept either.
    penalized = [p for p in model.parameters() if p.ndim > 1]
    optimizer = torch.optim.LBFGS(
        model.parameters(), lr=1.0, max_iter=LBFGS_ITERATIONS, history_size=HISTORY, line_search_fn="strong_wolfe"
    )

    def penalized_loss() -> torch.Tensor:
        loss = loss_fn(model(x), y)
        if settings.weight_decay > 0:
            loss = loss + 0.5 * settings.weight_decay * sum((p * p).sum() for p in penalized)
        return loss

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = penalized_loss()
        loss.backward()
        return loss

    model.train()
    previous = math.inf
    while True:
        optimizer.step(closure)
        with torch.no_grad():
            loss = penalized_loss().item()  # the penalized loss after the epoch's iterations
        ended = progress.end_epoch(loss, validation_value, keep_best)
        if ended is not None:
            return ended
        if abs(previous - loss) <= CONVERGED * max(1.0, abs(loss)):
            return "completed", f"L-BFGS converged at epoch {progress.epoch} (penalized training loss {loss:.6g})"
        previous = loss
