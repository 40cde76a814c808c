"""The linear model fitted by full-batch L-BFGS (`[train] linear_solver = "lbfgs"`, issue #24)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

from archsearch.spaces import NetSpec
from archsearch.trainers import TrainSettings, train_mlp
from archsearch.trainers._lbfgs import MAX_PASS_MACS, lbfgs_fits
from archsearch.trainers.engine import wants_lbfgs
from archsearch.trainers.fused import fused_unsupported_reason
from tests.trainers.conftest import standardized

LINEAR = NetSpec((), (), "relu")


@pytest.fixture(scope="module")
def wine():
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    return standardized(x[order], y[order], (0, 1, 2))


def _penalized_loss(data, weight, bias, l2):
    logits = data.x_train @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(data.y_train)), data.y_train].mean() + 0.5 * l2 * (weight**2).sum()


def test_lbfgs_reaches_scikit_learns_logistic_regression_optimum(wine):
    # weight_decay is the L2 coefficient on the mean loss: scikit-learn's C = 1 / (weight_decay * n_rows).
    l2 = 1e-2
    settings = TrainSettings(epochs=100, patience=None, weight_decay=l2, linear_solver="lbfgs", keep_last=True)
    result = train_mlp(LINEAR, wine, settings)
    weight, bias = (result.state_dict[k].numpy() for k in sorted(result.state_dict))  # "0.bias" < "0.weight"
    weight, bias = (bias, weight) if weight.ndim == 1 else (weight, bias)
    reference = LogisticRegression(C=1 / (l2 * len(wine.y_train)), tol=1e-10, max_iter=10_000)
    reference.fit(wine.x_train, wine.y_train)
    ours = _penalized_loss(wine, weight, bias, l2)
    theirs = _penalized_loss(wine, reference.coef_, reference.intercept_, l2)
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert result.status == "completed" and "L-BFGS converged" in result.reason


def test_lbfgs_beats_a_few_adam_steps_and_is_reproducible(wine):
    # The case it was built for: a small learning rate leaves the linear model far from its optimum.
    adam = train_mlp(LINEAR, wine, TrainSettings(epochs=3, lr=1e-4, linear_solver="optimizer"))
    lbfgs = [train_mlp(LINEAR, wine, TrainSettings(epochs=3, lr=1e-4, linear_solver="lbfgs")) for _ in range(2)]
    assert lbfgs[0].metrics["train_log_loss"] < adam.metrics["train_log_loss"] / 2
    assert lbfgs[0].history == lbfgs[1].history
    assert all(torch.equal(lbfgs[0].state_dict[k], lbfgs[1].state_dict[k]) for k in lbfgs[0].state_dict)


def test_only_linear_networks_without_embedding_on_data_of_cheap_passes_use_it(wine):
    lbfgs = TrainSettings(linear_solver="lbfgs")
    assert wants_lbfgs(LINEAR, "lbfgs") and lbfgs_fits(LINEAR, lbfgs.linear_solver, wine)
    assert not wants_lbfgs(LINEAR, TrainSettings().linear_solver)  # the trainer's default: "optimizer"
    assert not wants_lbfgs(NetSpec((8,), (0.0,), "relu"), "lbfgs")
    assert not wants_lbfgs(NetSpec((), (), "relu", embedding="pl", embedding_dim=8), "lbfgs")
    wide = dataclasses.replace(wine, x_train=np.zeros((int(MAX_PASS_MACS // (13 * 3)) + 1, 13), np.float32))
    assert not lbfgs_fits(LINEAR, lbfgs.linear_solver, wide)


def test_a_linear_model_on_data_too_large_for_full_batch_passes_trains_with_its_optimizer(wine, monkeypatch):
    monkeypatch.setattr("archsearch.trainers._lbfgs.MAX_PASS_MACS", 10)
    settings = TrainSettings(epochs=3, lr=1e-4, linear_solver="lbfgs")
    assert (
        train_mlp(LINEAR, wine, settings).history
        == train_mlp(LINEAR, wine, dataclasses.replace(settings, linear_solver="optimizer")).history
    )


def test_the_fused_engine_hands_a_linear_lbfgs_trial_to_the_single_engine():
    assert "linear_solver = 'lbfgs'" in fused_unsupported_reason(LINEAR, TrainSettings(linear_solver="lbfgs"))
    assert fused_unsupported_reason(NetSpec((8,), (0.0,), "relu"), TrainSettings(linear_solver="lbfgs")) is None


def test_a_bad_linear_solver_is_refused_with_its_name():
    with pytest.raises(ValueError, match=r"'linear_solver' parameter of TrainSettings must be one of \['lbfgs'"):
        TrainSettings(linear_solver="newton")
