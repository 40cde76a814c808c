"""Tests for archsearch.trainers._train (tiny data, a few epochs, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression

from archsearch.spaces import NetSpec
from archsearch.trainers import TrainSettings, build_mlp, train_mlp
from archsearch.trainers.data import PreparedData
from archsearch.trainers.metrics import classification_metrics, regression_metrics

from .conftest import standardized


def _prepared(x: np.ndarray, y: np.ndarray, task: str, classes: tuple | None) -> PreparedData:
    """Split 60/20/20 and standardize with training statistics, as load_data would."""
    return standardized(x, y, classes if task == "classification" else None)


def _classification(n_rows: int = 300, weights: list[float] | None = None, flip_y: float = 0.01) -> PreparedData:
    x, y = make_classification(
        n_samples=n_rows,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=3 if weights is None else 2,
        weights=weights,
        class_sep=2.0,
        flip_y=flip_y,
        random_state=0,
    )
    return _prepared(x, y.astype(np.int64), "classification", ("a", "b", "c") if weights is None else ("no", "yes"))


def _regression() -> PreparedData:
    x, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=0)
    return _prepared(x, 1000.0 + 50.0 * y, "regression", None)  # far from 0 and 1, to catch unit mix-ups


FAST = {"batch_size": 32, "epochs": 5}


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_train_mlp_reaches_high_accuracy_on_separable_data() -> None:
    """Check that a small MLP learns an easy problem and the result is complete."""
    result = train_mlp(
        NetSpec([32], [0.0], "relu"), _classification(), TrainSettings(batch_size=32, epochs=25, lr=1e-2)
    )
    assert result.status == "completed"
    assert result.reason is None
    assert result.epochs_run == 25 and len(result.history) == 25
    assert result.metrics["val_accuracy"] >= 0.9
    assert result.best_value == max(result.history) == result.history[result.best_epoch - 1]
    # Every metric of the task on every split, measured with the best epoch's weights.
    splits, names = ("train", "val", "test"), ("accuracy", "balanced_accuracy", "log_loss")
    assert set(result.metrics) == {f"{s}_{n}" for s in splits for n in names}
    assert result.metrics["val_accuracy"] == pytest.approx(result.best_value)
    assert result.device == "cpu"
    assert result.n_params == (6 * 32 + 32) + (32 * 3 + 3)
    assert all(t.device.type == "cpu" for t in result.state_dict.values())


@pytest.mark.slow
def test_same_seed_gives_identical_runs_and_other_seeds_differ() -> None:
    """Check that a seed fixes weight init, batch order and dropout masks on CPU."""
    data = _classification()
    first = train_mlp(NetSpec([16, 16], [0.3, 0.3], "gelu"), data, TrainSettings(seed=7, **FAST))
    second = train_mlp(NetSpec([16, 16], [0.3, 0.3], "gelu"), data, TrainSettings(seed=7, **FAST))
    other = train_mlp(NetSpec([16, 16], [0.3, 0.3], "gelu"), data, TrainSettings(seed=8, **FAST))
    assert first.metrics == second.metrics
    assert first.history == second.history
    assert all(torch.equal(t, second.state_dict[name]) for name, t in first.state_dict.items())
    assert first.history != other.history
    assert not torch.equal(first.state_dict["0.weight"], other.state_dict["0.weight"])


def test_train_mlp_leaves_the_global_rng_alone() -> None:
    """Check that training (dropout included) restores torch's global random state."""
    state = torch.get_rng_state()
    train_mlp(NetSpec([8], [0.5], "relu"), _classification(), TrainSettings(**FAST))
    assert torch.equal(torch.get_rng_state(), state)


def test_report_is_called_every_epoch_and_can_prune() -> None:
    """Check that report gets (epoch, val metric) from epoch 1 on, and True stops with status pruned."""
    calls: list[tuple[int, float]] = []

    def report(epoch: int, value: float) -> bool:
        calls.append((epoch, value))
        return epoch == 3

    result = train_mlp(NetSpec([8], [0.0], "relu"), _classification(), TrainSettings(batch_size=32, epochs=10), report)
    assert [epoch for epoch, _ in calls] == [1, 2, 3]
    assert [value for _, value in calls] == result.history
    assert result.status == "pruned"
    assert result.reason == "pruned by the pruner at epoch 3"
    assert result.epochs_run == 3
    # A pruned run still reports its best epoch's metrics.
    assert "test_accuracy" in result.metrics


def test_report_returning_a_reason_stops_the_run_with_it() -> None:
    """Check that a string from report stops the run as pruned, with that string as the reason."""
    result = train_mlp(
        NetSpec([8], [0.0], "relu"),
        _classification(),
        TrainSettings(batch_size=32, epochs=10),
        lambda e, v: e == 2 and "time",
    )
    assert (result.status, result.reason, result.epochs_run) == ("pruned", "time", 2)


def test_huge_learning_rate_diverges_without_raising() -> None:
    """Check that a NaN/inf loss ends the run with status diverged and a reason naming the epoch."""
    settings = TrainSettings(optimizer="sgd", lr=1e6, batch_size=32, epochs=20)
    result = train_mlp(NetSpec([32], [0.0], "relu"), _classification(), settings)
    assert result.status == "diverged"
    assert result.reason is not None
    assert result.reason.startswith(("loss became nan at epoch", "loss became inf at epoch"))
    assert result.epochs_run < 20


def test_patience_stops_early_and_restores_the_best_weights() -> None:
    """Check that the run stops `patience` epochs after its best one and keeps that epoch's weights."""
    data = _classification(flip_y=0.3)  # noisy labels: a big network with a big step overfits quickly
    settings = TrainSettings(lr=3e-2, batch_size=32, epochs=60, patience=3, metric="log_loss")
    result = train_mlp(NetSpec([128, 128], [0.0, 0.0], "relu"), data, settings)
    assert result.status == "completed"
    assert result.epochs_run == result.best_epoch + 3 < 60
    assert result.reason.startswith(f"early stopped at epoch {result.epochs_run}")
    # log_loss is minimized: the best value is the smallest seen, and the later epochs were worse.
    assert result.best_value == min(result.history)
    assert result.history[-1] > result.best_value
    assert result.metrics["val_log_loss"] == pytest.approx(result.best_value)


def test_balanced_class_weights_help_the_minority_class() -> None:
    """Check that class_weight='balanced' beats no weighting on balanced accuracy, same seed and data."""
    data = _classification(n_rows=400, weights=[0.9, 0.1])
    scores = {}
    for class_weight in ("none", "balanced"):
        settings = TrainSettings(class_weight=class_weight, metric="balanced_accuracy", lr=3e-3, **FAST)
        result = train_mlp(NetSpec([16], [0.0], "relu"), data, settings)
        assert result.status == "completed"
        scores[class_weight] = result.metrics["val_balanced_accuracy"]
    assert scores["balanced"] > scores["none"]


def test_regression_metrics_are_in_original_units() -> None:
    """Check that rmse/r2 compare predictions and targets in the target's own units."""
    data = _regression()
    result = train_mlp(
        NetSpec([32], [0.0], "silu"), data, TrainSettings(metric="rmse", lr=1e-2, batch_size=32, epochs=30)
    )
    assert set(result.metrics) == {f"{s}_{n}" for s in ("train", "val", "test") for n in ("rmse", "r2")}
    assert result.metrics["test_r2"] > 0.8
    # Recompute from the returned weights, undoing the target scaling by hand.
    model = build_mlp(5, [32], [0.0], "silu", 1)
    model.load_state_dict(result.state_dict)
    prep = data.preprocessing
    with torch.no_grad():
        predicted = model.eval()(torch.from_numpy(data.x_test)).numpy()[:, 0] * prep.target_scale + prep.target_mean
    expected = regression_metrics(data.y_test * prep.target_scale + prep.target_mean, predicted)
    assert result.metrics["test_rmse"] == pytest.approx(expected["rmse"], rel=1e-4)
    assert result.metrics["test_r2"] == pytest.approx(expected["r2"], rel=1e-4)


def test_metric_must_apply_to_the_task() -> None:
    """Check that a regression metric on a classification task is refused with the usable names."""
    with pytest.raises(ValueError, match=r"The metric 'rmse' does not apply to classification; use one of"):
        train_mlp(NetSpec([8], [0.0], "relu"), _classification(), TrainSettings(metric="rmse", **FAST))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is absent")
def test_cuda_device_without_cuda_is_refused() -> None:
    """Check that asking for CUDA on a machine without it says how to fix the settings."""
    with pytest.raises(ValueError, match="PyTorch sees no CUDA device; use 'auto' or 'cpu'"):
        train_mlp(NetSpec([8], [0.0], "relu"), _classification(), TrainSettings(device="cuda", **FAST))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -1}, "The 'lr' parameter of TrainSettings must be a float > 0. Got -1 instead."),
        ({"weight_decay": -0.1}, "The 'weight_decay' parameter of TrainSettings must be a float >= 0"),
        ({"batch_size": 0}, "The 'batch_size' parameter of TrainSettings must be an int >= 1. Got 0 instead."),
        ({"optimizer": "rmsprop"}, r"The 'optimizer' parameter of TrainSettings must be one of \['adam', 'adamw'"),
        ({"epochs": 2.5}, "The 'epochs' parameter of TrainSettings must be an int >= 1. Got 2.5 instead."),
        ({"patience": 0}, "The 'patience' parameter of TrainSettings must be an int >= 1 or None"),
        ({"metric": "f1"}, "The 'metric' parameter of TrainSettings must be one of"),
        ({"seed": -3}, "The 'seed' parameter of TrainSettings must be an int >= 0"),
        ({"device": "gpu"}, "The 'device' parameter of TrainSettings must be one of 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ({"bf16": "yes"}, "The 'bf16' parameter of TrainSettings must be a bool. Got 'yes' instead."),
        ({"class_weight": "auto"}, "The 'class_weight' parameter of TrainSettings must be one of"),
        ({"num_threads": 0}, "The 'num_threads' parameter of TrainSettings must be an int >= 1 or None"),
    ],
)
def test_train_settings_validation(kwargs: dict, match: str) -> None:
    """Check that each bad setting is rejected with a message naming the parameter and value."""
    with pytest.raises(ValueError, match=match):
        TrainSettings(**kwargs)


def test_train_settings_accepts_valid_values() -> None:
    """Check that ints for floats, None patience and indexed CUDA devices are valid settings."""
    settings = TrainSettings(lr=1, weight_decay=0, patience=None, device="cuda:1", num_threads=2)
    assert settings.device == "cuda:1"


def _plain_loop(
    widths, dropouts, data: PreparedData, settings: TrainSettings
) -> tuple[list[float], dict[str, torch.Tensor]]:
    """The training arithmetic spelled out step by step: per-batch row indexing, no shortcuts (CPU, log_loss)."""
    generator = torch.Generator().manual_seed(settings.seed)
    model = build_mlp(data.n_features, widths, dropouts, "relu", data.n_outputs, generator=generator)
    common = {"lr": settings.lr, "weight_decay": settings.weight_decay, "fused": True}
    if settings.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), momentum=0.9, nesterov=True, **common)
    else:
        optimizer = torch.optim.Adam(model.parameters(), **common)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    history, best_state = [], None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)  # dropout masks come from the global generator
        for _ in range(settings.epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), settings.batch_size):
                index = order[start : start + settings.batch_size]
                loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.inference_mode():
                proba = torch.softmax(model(torch.from_numpy(data.x_val)), dim=1)
            value = classification_metrics(data.y_val, proba.numpy())["log_loss"]
            if not history or value < min(history):
                best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
            history.append(value)
    return history, best_state


@pytest.mark.parametrize(
    ("widths", "dropouts", "overrides"),
    [
        ([16], [0.3], {"batch_size": 32, "optimizer": "adam", "lr": 3e-3}),
        # A batch size that leaves a short last batch and batches that do not start on aligned addresses.
        ([12, 8], [0.2, 0.0], {"batch_size": 37, "optimizer": "sgd", "lr": 1e-2, "weight_decay": 1e-3}),
    ],
)
def test_train_mlp_matches_a_plain_step_by_step_loop_exactly(widths: list, dropouts: list, overrides: dict) -> None:
    """Check that the trainer's speed-ups leave the arithmetic alone: same seed, bit-identical history and weights."""
    data = _classification()
    settings = TrainSettings(epochs=6, metric="log_loss", seed=11, **overrides)
    result = train_mlp(NetSpec(widths, dropouts, "relu"), data, settings)
    history, best_state = _plain_loop(widths, dropouts, data, settings)
    # Exact equality, not approx: any reordering of the arithmetic would show in the last bits of log_loss.
    assert result.history == history
    assert set(result.state_dict) == set(best_state)
    assert all(torch.equal(result.state_dict[name], best_state[name]) for name in best_state)


def test_train_mlp_keep_last_keeps_the_final_epoch() -> None:
    """Check that keep_last makes the last epoch the kept one, whatever the validation metric did."""
    from sklearn.datasets import make_classification

    from archsearch.trainers import TrainSettings, train_mlp

    x, y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)
    data = standardized(x, y, (0, 1))
    result = train_mlp(
        NetSpec([8], [0.0], "relu"), data, TrainSettings(lr=0.5, optimizer="sgd", epochs=6, keep_last=True)
    )
    assert result.best_epoch == result.epochs_run == 6
