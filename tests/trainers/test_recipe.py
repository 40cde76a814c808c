"""Tests of the training recipe knobs of TrainSettings: lr schedule, label smoothing, gradient clipping, norm layers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_classification, make_regression
from torch.optim.optimizer import register_optimizer_step_pre_hook

from archsearch.spaces import NetSpec
from archsearch.trainers import TrainSettings, build_mlp, export_model, load_model, train_mlp
from archsearch.trainers._train import _make_loss
from archsearch.trainers.data import PreparedData

from .conftest import standardized


def _prepared(task: str = "classification", n_rows: int = 200) -> PreparedData:
    """A 60/20/20 split of a tiny problem with 4 features, standardized with training statistics (not its target)."""
    if task == "classification":
        x, y = make_classification(
            n_samples=n_rows, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0
        )
        return standardized(x, y, ("a", "b", "c"), names=("a", "b", "c", "d"))
    x, y = make_regression(n_samples=n_rows, n_features=4, noise=1.0, random_state=0)
    return standardized(x, y, None, names=("a", "b", "c", "d"), scale_target=False)


def _lrs_of(data: PreparedData, settings: TrainSettings, report=None, *, normalization: str = "none") -> list[float]:
    """The learning rate of every optimizer step of one run, read just before the step."""
    lrs: list[float] = []
    handle = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: lrs.append(optimizer.param_groups[0]["lr"])
    )
    try:
        train_mlp(NetSpec([8], [0.0], "relu", normalization=normalization), data, settings, report)
    finally:
        handle.remove()
    return lrs


def _planned_lr(step: int, total: int, warmup: float, schedule: str, lr: float) -> float:
    """The schedule as the issue states it: linear warm-up, then flat, a cosine to 0 or a line to 0."""
    warm = round(warmup * total)
    if step < warm:
        return lr * (step + 1) / warm
    progress = (step - warm) / (total - warm)
    return lr * {"constant": 1.0, "cosine": (1 + math.cos(math.pi * progress)) / 2, "onecycle": 1 - progress}[schedule]


@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle"])
def test_lr_schedule_sets_the_planned_lr_at_every_step(schedule: str) -> None:
    """Check that each schedule gives the planned lr at each batch step, over epochs x batches per epoch."""
    data = _prepared()  # 120 training rows: 4 batches of 32 per epoch
    settings = TrainSettings(lr=0.01, batch_size=32, epochs=5, lr_schedule=schedule, warmup=0.2, seed=1)
    lrs = _lrs_of(data, settings)
    assert len(lrs) == 20
    assert lrs == pytest.approx([_planned_lr(k, 20, 0.2, schedule, 0.01) for k in range(20)], rel=1e-12)
    # The warm-up rises to the full lr at its last step (4 of 20); decaying schedules end near 0.
    assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert lrs[-1] < 0.002 if schedule != "constant" else lrs[-1] == 0.01


def test_cooldown_lowers_the_lr_linearly_over_the_last_steps_only() -> None:
    """Check that a constant schedule with cooldown 0.25 keeps the lr for 15 of 20 steps, then falls towards 0."""
    settings = TrainSettings(lr=0.01, batch_size=32, epochs=5, cooldown=0.25, seed=1)
    lrs = _lrs_of(_prepared(), settings)
    assert lrs[:15] == [0.01] * 15
    assert lrs[15:] == pytest.approx([0.01 * k / 6 for k in (5, 4, 3, 2, 1)], rel=1e-12)


def test_default_settings_leave_the_lr_untouched() -> None:
    """Check that the default constant schedule without warm-up trains every step at the given lr."""
    assert set(_lrs_of(_prepared(), TrainSettings(lr=0.003, batch_size=32, epochs=2))) == {0.003}


def test_lr_schedule_spans_the_full_budget_when_a_run_stops_early() -> None:
    """Check that a pruned run followed the same lr per step as a full run, up to where it stopped."""
    data = _prepared()
    settings = TrainSettings(lr=0.01, batch_size=32, epochs=6, lr_schedule="cosine", warmup=0.1)
    full = _lrs_of(data, settings)
    pruned = _lrs_of(data, settings, report=lambda epoch, value: epoch == 2)
    assert len(pruned) == 8
    assert pruned == full[:8]


def test_label_smoothing_loss_matches_a_hand_computation() -> None:
    """Check the smoothed cross-entropy: (1 - e) * NLL of the label + e * mean NLL over all classes."""
    data = _prepared()
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])  # (batch, n_classes)
    labels = torch.tensor([0, 1])
    loss = _make_loss(data, "none", 0.1, torch.device("cpu"))(logits, labels)
    log_p = torch.log_softmax(logits, dim=1)
    nll = -log_p[torch.arange(2), labels]  # (batch,)
    expected = ((1 - 0.1) * nll + 0.1 * (-log_p).mean(dim=1)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Without smoothing the loss is the plain cross-entropy, bit for bit.
    assert torch.equal(
        _make_loss(data, "none", 0.0, torch.device("cpu"))(logits, labels), F.cross_entropy(logits, labels)
    )


def test_label_smoothing_changes_training() -> None:
    """Check that label smoothing reaches the trainer's loss: same seed, different weights."""
    data = _prepared()
    plain = train_mlp(NetSpec([8], [0.0], "relu"), data, TrainSettings(batch_size=32, epochs=2, keep_last=True))
    smoothed = train_mlp(
        NetSpec([8], [0.0], "relu"), data, TrainSettings(batch_size=32, epochs=2, keep_last=True, label_smoothing=0.2)
    )
    assert not torch.equal(plain.state_dict["0.weight"], smoothed.state_dict["0.weight"])


def test_grad_clip_bounds_the_update() -> None:
    """Check that clipping bounds one SGD step to lr x 1.9 x grad_clip (Nesterov momentum 0.9 on a first step)."""
    data = _prepared()
    initial = build_mlp(4, [16], [0.0], "relu", 3, generator=torch.Generator().manual_seed(0)).state_dict()
    # One step over all 120 rows, with an lr large enough that the unclipped step is far longer.
    common = {"lr": 1.0, "optimizer": "sgd", "batch_size": 120, "epochs": 1, "metric": "log_loss"}

    def step_norm(settings: TrainSettings) -> float:
        trained = train_mlp(NetSpec([16], [0.0], "relu"), data, settings).state_dict
        return math.sqrt(sum(float(((trained[k] - initial[k]) ** 2).sum()) for k in initial))

    clipped, free = step_norm(TrainSettings(grad_clip=0.01, **common)), step_norm(TrainSettings(**common))
    assert clipped == pytest.approx(1.0 * 1.9 * 0.01, rel=1e-4)
    assert free > 10 * clipped


@pytest.mark.parametrize(("normalization", "layer"), [("batch", torch.nn.BatchNorm1d), ("layer", torch.nn.LayerNorm)])
def test_build_mlp_puts_a_norm_layer_after_each_hidden_linear(normalization: str, layer: type) -> None:
    """Check the order Linear -> norm -> activation -> Dropout, and that 'none' keeps the old module names."""
    model = build_mlp(4, [8, 6], [0.1, 0.0], "relu", 3, normalization=normalization)
    kinds = [type(m) for m in model]
    assert kinds == [
        torch.nn.Linear,
        layer,
        torch.nn.ReLU,
        torch.nn.Dropout,
        torch.nn.Linear,
        layer,
        torch.nn.ReLU,
        torch.nn.Linear,
    ]
    assert model[1].normalized_shape == (8,) if normalization == "layer" else model[1].num_features == 8
    plain = build_mlp(4, [8, 6], [0.1, 0.0], "relu", 3, normalization="none").state_dict()
    assert list(plain) == list(build_mlp(4, [8, 6], [0.1, 0.0], "relu", 3).state_dict())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("normalization", ["batch", "layer"])
def test_normalized_network_exports_and_loads_with_the_same_predictions(tmp_path: Path, normalization: str) -> None:
    """Check that export stores the norm layers and load_model predicts as the trained module does."""
    data = _prepared()
    settings = TrainSettings(batch_size=32, epochs=3)
    result = train_mlp(NetSpec([16, 8], [0.2, 0.0], "relu", normalization=normalization), data, settings)
    export_model(
        tmp_path,
        net=NetSpec([16, 8], [0.2, 0.0], "relu", normalization=normalization),
        state_dict=result.state_dict,
        preprocessing=data.preprocessing,
        metadata={},
    )
    assert json.loads((tmp_path / "architecture.json").read_text())["normalization"] == normalization
    trained = build_mlp(4, [16, 8], [0.2, 0.0], "relu", 3, normalization=normalization)
    trained.load_state_dict(result.state_dict)
    with torch.inference_mode():
        expected = torch.softmax(trained.eval()(torch.from_numpy(data.x_test)), dim=1).numpy()
    np.testing.assert_allclose(load_model(tmp_path).predict_proba(data.raw_test), expected, atol=1e-5)
    program = torch.export.load(tmp_path / "model.pt2").module()
    logits = program(torch.from_numpy(data.preprocessing.encode(data.raw_test)))
    np.testing.assert_allclose(torch.softmax(logits, dim=1).detach().numpy(), expected, atol=1e-5)


def test_a_model_folder_without_normalization_loads_as_none(tmp_path: Path) -> None:
    """Check that architecture.json files written before normalization existed still load."""
    data = _prepared()
    result = train_mlp(NetSpec([8], [0.0], "relu"), data, TrainSettings(batch_size=32, epochs=1))
    export_model(
        tmp_path,
        net=NetSpec([8], [0.0], "relu"),
        state_dict=result.state_dict,
        preprocessing=data.preprocessing,
        metadata={},
    )
    path = tmp_path / "architecture.json"
    architecture = json.loads(path.read_text())
    assert architecture.pop("normalization") == "none"
    path.write_text(json.dumps(architecture))
    assert load_model(tmp_path).predict(data.raw_test).shape == (len(data.raw_test),)


def test_batch_norm_trains_when_the_last_batch_would_hold_one_row() -> None:
    """Check that a last batch of a single row is left out under batch norm (it has no batch statistics)."""
    data = _prepared(n_rows=205)  # 123 training rows: batches of 61, 61 and 1
    lrs = _lrs_of(data, TrainSettings(batch_size=61, epochs=2), normalization="batch")
    assert len(lrs) == 4
    assert len(_lrs_of(data, TrainSettings(batch_size=61, epochs=2))) == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"lr_schedule": "step"},
            r"The 'lr_schedule' parameter of TrainSettings must be one of \['constant', 'cosine', 'onecycle'\]. Got 'step' instead.",
        ),
        ({"warmup": 0.6}, r"The 'warmup' parameter of TrainSettings must be a float in \[0, 0.5\]. Got 0.6 instead."),
        ({"warmup": -0.1}, r"The 'warmup' parameter of TrainSettings must be a float in \[0, 0.5\]"),
        (
            {"label_smoothing": 0.5},
            r"The 'label_smoothing' parameter of TrainSettings must be a float in \[0, 0.5\). Got 0.5",
        ),
        ({"label_smoothing": True}, r"The 'label_smoothing' parameter of TrainSettings must be a float in \[0, 0.5\)"),
        (
            {"grad_clip": 0.0},
            r"The 'grad_clip' parameter of TrainSettings must be a float > 0 or None. Got 0.0 instead.",
        ),
        ({"grad_clip": float("inf")}, r"The 'grad_clip' parameter of TrainSettings must be a float > 0 or None"),
        (
            {"cooldown": 0.6},
            r"The 'cooldown' parameter of TrainSettings must be a float in \[0, 0.5\].*Got 0.6 instead",
        ),
        (
            {"cooldown": 0.2, "lr_schedule": "cosine"},
            r"'cooldown' parameter .* above 0 only with lr_schedule \"constant\" .*Got 0.2 instead",
        ),
    ],
)
def test_train_settings_rejects_bad_recipe_values(kwargs: dict, match: str) -> None:
    """Check that each bad recipe setting is rejected with a message naming the parameter, rule and value."""
    with pytest.raises(ValueError, match=match):
        TrainSettings(**kwargs)


def test_build_mlp_rejects_an_unknown_normalization() -> None:
    """Check that build_mlp names the valid norm layers."""
    with pytest.raises(
        ValueError,
        match=r"The 'normalization' parameter of build_mlp must be one of \['none', 'batch', 'layer'\]. Got 'rms'",
    ):
        build_mlp(4, [8], [0.0], "relu", 3, normalization="rms")


def test_label_smoothing_is_refused_for_regression() -> None:
    """Check that label smoothing on a regression task is an error that says to use 0.0."""
    with pytest.raises(ValueError, match="label smoothing applies to classification only; use 0.0 for regression"):
        train_mlp(
            NetSpec([8], [0.0], "relu"),
            _prepared("regression"),
            TrainSettings(metric="rmse", label_smoothing=0.1, epochs=1),
        )


def test_batch_norm_needs_two_training_rows() -> None:
    """Check that batch norm on a single training row is refused instead of diverging."""
    data = _prepared()
    one_row = PreparedData(
        "one", data.x_train[:1], data.y_train[:1], data.x_val, data.y_val, data.x_test, data.y_test, data.preprocessing
    )
    with pytest.raises(ValueError, match="normalization 'batch' needs at least 2 training rows"):
        train_mlp(NetSpec([8], [0.0], "relu", normalization="batch"), one_row, TrainSettings(epochs=1))
