"""Tests for archsearch.trainers.fused: the fused population trainer against train_mlp (tiny data, CPU)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import archsearch.trainers.fused._forward
from archsearch.spaces import NetSpec
from archsearch.trainers import (
    FusedGroup,
    Population,
    SlotSpec,
    TrainResult,
    TrainSettings,
    build_mlp,
    fused_unsupported_reason,
    train_fused,
    train_mlp,
)
from archsearch.trainers.data import DataSpec, PreparedData, load_data

GROUP = FusedGroup("relu", batch_size=32, max_depth=3, max_width=32)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: these tiny products only lose to thread hand-offs, badly so on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def wine() -> PreparedData:
    return load_data(DataSpec(dataset="wine", test_fraction=0.2))  # 106 training rows, 13 features, 3 classes


@pytest.fixture(scope="module")
def diabetes() -> PreparedData:
    return load_data(DataSpec(dataset="diabetes"))  # regression, 10 features


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    """Three numeric columns (one of three values, so some pl bins are empty) and a one-hot one, 3 classes."""
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame(
        {
            "a": rng.exponential(1.0, n),
            "b": rng.normal(size=n),
            "k": rng.integers(0, 3, n),
            "c": rng.choice(list("xyz"), n),
        }
    )
    frame["label"] = np.where(frame["a"] + frame["b"] > 1.0, "hi", np.where(frame["c"] == "x", "mid", "lo"))
    path = tmp_path_factory.mktemp("mixed") / "rows.csv"
    frame.to_csv(path, index=False)
    data = load_data(DataSpec(dataset=None, path=str(path), target="label"))
    assert data.preprocessing.numeric_features == (0, 1, 2) and data.n_features == 6
    return data


NET_KEYS = ("normalization", "embedding", "embedding_dim")


def _spec(widths: tuple[int, ...], dropout: float = 0.0, activation: str = "relu", **settings: object) -> SlotSpec:
    net = {key: settings.pop(key) for key in NET_KEYS if key in settings}
    return SlotSpec(
        NetSpec(widths, (dropout,) * len(widths), activation, **net), TrainSettings(batch_size=32, **settings)
    )


def _with_net(spec: SlotSpec, **net: object) -> SlotSpec:
    """`spec` with other architecture values (normalization, embedding, embedding_dim)."""
    return dataclasses.replace(spec, net=dataclasses.replace(spec.net, **net))


def _single(spec: SlotSpec, data: PreparedData) -> TrainResult:
    return train_mlp(spec.net, data, spec.settings)


def _assert_same_run(fused: TrainResult, single: TrainResult) -> None:
    assert (fused.status, fused.reason, fused.epochs_run, fused.best_epoch) == (
        single.status,
        single.reason,
        single.epochs_run,
        single.best_epoch,
    )
    # Per-epoch validation metrics within 1e-4; weights and final metrics within float rounding.
    np.testing.assert_allclose(fused.history, single.history, rtol=0, atol=1e-4)
    assert fused.state_dict.keys() == single.state_dict.keys()
    for name, tensor in single.state_dict.items():
        assert fused.state_dict[name].shape == tensor.shape
        torch.testing.assert_close(fused.state_dict[name], tensor, rtol=1e-4, atol=1e-5)
    assert fused.metrics.keys() == single.metrics.keys()
    for name, value in single.metrics.items():
        assert fused.metrics[name] == pytest.approx(value, abs=1e-4)
    assert fused.n_params == single.n_params


MIXED = [
    _spec((16,), lr=1e-2, epochs=4, seed=1),
    _spec((8, 24), lr=3e-3, optimizer="adamw", weight_decay=0.1, epochs=5, seed=2),
    _spec((), lr=5e-2, optimizer="sgd", weight_decay=1e-3, epochs=3, seed=3),
    _spec((32, 8, 12), lr=1e-3, weight_decay=1e-2, epochs=6, seed=4, metric="log_loss"),
    _spec((20, 20), lr=2e-2, optimizer="sgd", epochs=30, patience=2, seed=5),
    _spec((5, 7, 3), lr=1e-2, optimizer="adamw", epochs=4, seed=6, keep_last=True),
]


def test_mixed_population_matches_train_mlp(wine: PreparedData) -> None:
    """Check that slots of mixed depths, widths, lrs and optimizers, refilled mid-way, equal train_mlp's runs."""
    # Capacity 3 for 6 runs: later runs join freed slots while the others are at other epochs.
    results = train_fused(MIXED, wine, GROUP, capacity=3)
    for spec, fused in zip(MIXED, results):
        _assert_same_run(fused, _single(spec, wine))
    # The patience slot stopped early on its own, with train_mlp's reason.
    assert results[4].reason.startswith("early stopped at epoch")


# Embedded slots with the recipe's options, refilled mid-way (capacity 3 for 5 runs); the depth-0 slot is the
# additive model that train_mlp builds for an embedding without hidden layers.
EMBEDDED = [
    _spec((16,), lr=1e-2, epochs=4, seed=1),
    _spec((8, 24), lr=3e-3, optimizer="adamw", weight_decay=0.1, epochs=5, seed=2, lr_schedule="cosine", warmup=0.1),
    _spec((), lr=5e-2, optimizer="sgd", epochs=3, seed=3, label_smoothing=0.1),
    _spec((32, 8, 12), lr=1e-3, epochs=6, seed=4, grad_clip=0.5, metric="log_loss"),
    _spec((20, 20), lr=2e-2, optimizer="sgd", epochs=30, patience=2, seed=5),
]


@pytest.mark.parametrize("embedding", ["pl", "periodic"])
def test_embedded_population_matches_train_mlp(
    mixed: PreparedData, embedding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that slots with a numeric-feature embedding equal train_mlp's runs, weights and state-dict names included."""
    # Validation in chunks of a few rows (3 slots x 32 units, or the embedding's width), so its slices are tested too.
    monkeypatch.setattr(archsearch.trainers.fused._forward, "_EVAL_ELEMENTS", 3 * 200)
    specs = [_with_net(spec, embedding=embedding, embedding_dim=4) for spec in EMBEDDED]
    group = dataclasses.replace(GROUP, embedding=embedding, embedding_dim=4)
    results = train_fused(specs, mixed, group, capacity=3)
    for spec, fused in zip(specs, results):
        _assert_same_run(fused, _single(spec, mixed))
    # The embedding is module 0 of the network: 3 numeric inputs embedded, the 3 one-hot ones passed through.
    state = results[0].state_dict
    assert state["0.numeric"].tolist() == [0, 1, 2] and state["0.passed"].tolist() == [3, 4, 5]
    assert state["1.weight"].shape == (16, 3 * 4 + 3)
    assert (
        results[0].n_params == 3 * (4 * 4 + 4 if embedding == "pl" else 4 + 2 * 4 * 4 + 4) + 16 * 15 + 16 + 3 * 16 + 3
    )


def test_an_embedding_without_numeric_inputs_is_the_plain_network(tmp_path: Path) -> None:
    """Check that a pl group on one-hot inputs only trains the plain network, as build_embedding returns None."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"c": rng.choice(list("xyz"), 120), "d": rng.choice(list("uv"), 120)})
    frame["label"] = np.where(frame["c"] == "x", "a", "b")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    one_hot = load_data(DataSpec(dataset=None, path=str(tmp_path / "rows.csv"), target="label"))
    assert one_hot.preprocessing.numeric_features == () and one_hot.n_features == 5
    spec = _with_net(_spec((8,), lr=1e-2, epochs=3, seed=1), embedding="pl", embedding_dim=4)
    (fused,) = train_fused([spec], one_hot, dataclasses.replace(GROUP, embedding="pl", embedding_dim=4), capacity=1)
    _assert_same_run(fused, _single(spec, one_hot))
    assert sorted(fused.state_dict) == ["0.bias", "0.weight", "2.bias", "2.weight"]


def test_group_of_a_run_ignores_the_embedding_size_without_an_embedding() -> None:
    """Check that runs without an embedding share a group whatever their embedding_dim, and embedded ones do not."""
    plain, other = _spec((8,)), _with_net(_spec((8,)), embedding_dim=16)
    assert FusedGroup.of(plain) == FusedGroup.of(other)
    pl = _with_net(plain, embedding="pl", embedding_dim=16)
    assert (FusedGroup.of(pl).embedding, FusedGroup.of(pl).embedding_dim) == ("pl", 16)
    assert FusedGroup.of(pl) != FusedGroup.of(_with_net(pl, embedding_dim=8))
    assert FusedGroup.of(pl).n_inputs(10, 8) == 2 + 8 * 16


def test_regression_and_balanced_class_weights_match_train_mlp(wine: PreparedData, diabetes: PreparedData) -> None:
    """Check that the MSE loss and the balanced cross-entropy equal train_mlp's."""
    regression = [_spec((16, 8), lr=1e-2, epochs=3, seed=s, metric="rmse") for s in (0, 1)]
    for spec, fused in zip(regression, train_fused(regression, diabetes, GROUP, capacity=2)):
        _assert_same_run(fused, _single(spec, diabetes))
    balanced = [_spec((16,), lr=1e-2, epochs=3, seed=s, class_weight="balanced") for s in (0, 1)]
    group = dataclasses.replace(GROUP, class_weight="balanced")
    for spec, fused in zip(balanced, train_fused(balanced, wine, group, capacity=2)):
        _assert_same_run(fused, _single(spec, wine))


# The training recipe per slot, mixed within one population and refilled mid-way (capacity 3 for 6 runs).
RECIPE = {
    "lr_schedule": [
        _spec((16,), lr=1e-2, epochs=4, seed=1, lr_schedule="cosine", warmup=0.05),
        _spec((8, 24), lr=3e-3, optimizer="adamw", epochs=5, seed=2, lr_schedule="onecycle", warmup=0.2),
        _spec((), lr=5e-2, optimizer="sgd", epochs=3, seed=3),
        _spec((32, 8), lr=1e-2, epochs=6, seed=4, warmup=0.3),
        _spec((20,), lr=2e-2, optimizer="sgd", epochs=30, patience=2, seed=5, lr_schedule="cosine"),
        _spec((5, 7), lr=1e-2, epochs=4, seed=6, lr_schedule="onecycle", warmup=0.5),
    ],
    "label_smoothing": [
        _spec((16,), lr=1e-2, epochs=4, seed=1, label_smoothing=0.2),
        _spec((8, 24), lr=3e-3, optimizer="adamw", epochs=5, seed=2),
        _spec((), lr=5e-2, optimizer="sgd", epochs=3, seed=3, label_smoothing=0.05),
        _spec((32, 8), lr=1e-2, epochs=6, seed=4, label_smoothing=0.45, metric="log_loss"),
        _spec((20,), lr=2e-2, epochs=3, seed=5, label_smoothing=0.1),
        _spec((5, 7), lr=1e-2, epochs=4, seed=6),
    ],
    "grad_clip": [
        _spec((16,), lr=1e-2, epochs=4, seed=1, grad_clip=0.1),
        _spec((8, 24), lr=3e-3, optimizer="adamw", epochs=5, seed=2),
        _spec((), lr=5e-2, optimizer="sgd", epochs=3, seed=3, grad_clip=0.5),
        _spec((32, 8), lr=1e-2, epochs=6, seed=4, grad_clip=1000.0),
        _spec((20,), lr=2e-2, optimizer="sgd", epochs=3, seed=5, grad_clip=0.01),
        _spec((5, 7), lr=1e-2, epochs=4, seed=6, grad_clip=0.3, lr_schedule="cosine", label_smoothing=0.1),
    ],
}


@pytest.mark.parametrize("option", sorted(RECIPE))
def test_recipe_options_match_train_mlp(wine: PreparedData, option: str) -> None:
    """Check that slots with their own lr schedule, label smoothing or gradient clipping equal train_mlp's runs."""
    specs = RECIPE[option]
    for spec, fused in zip(specs, train_fused(specs, wine, GROUP, capacity=3)):
        _assert_same_run(fused, _single(spec, wine))


def test_label_smoothing_with_balanced_class_weights_matches_train_mlp(wine: PreparedData) -> None:
    """Check that label smoothing with balanced class weights equals train_mlp's weighted cross-entropy."""
    specs = [
        _spec((16,), lr=1e-2, epochs=3, seed=s, class_weight="balanced", label_smoothing=eps)
        for s, eps in ((0, 0.3), (1, 0.0), (2, 0.1))
    ]
    group = dataclasses.replace(GROUP, class_weight="balanced")
    for spec, fused in zip(specs, train_fused(specs, wine, group, capacity=2)):
        _assert_same_run(fused, _single(spec, wine))


@pytest.mark.parametrize("normalization", ["layer", "batch"])
def test_normalized_population_matches_train_mlp(
    wine: PreparedData, diabetes: PreparedData, normalization: str
) -> None:
    """Check that LayerNorm over each slot's real width, or per-slot BatchNorm, equals train_mlp's runs."""
    group = dataclasses.replace(GROUP, normalization=normalization)
    # Before a BatchNorm the Linear's bias gets a gradient of float-rounding noise only, which Adam scales up
    # to full steps of either sign (in train_mlp too), so its trajectory is not reproducible to 1e-4; SGD
    # keeps that noise at noise size.
    optimizer = {"optimizer": "sgd"} if normalization == "batch" else {}
    specs = [
        dataclasses.replace(
            _with_net(spec, normalization=normalization), settings=dataclasses.replace(spec.settings, **optimizer)
        )
        for spec in RECIPE["label_smoothing"] + [_spec((3, 32, 1), lr=1e-2, epochs=3, seed=7, dropout=0.0)]
    ]
    for spec, fused in zip(specs, train_fused(specs, wine, group, capacity=3)):
        _assert_same_run(fused, _single(spec, wine))
    regression = [
        _spec((16, 8), lr=1e-2, epochs=3, seed=s, metric="rmse", normalization=normalization, **optimizer)
        for s in (0, 1)
    ]
    for spec, fused in zip(regression, train_fused(regression, diabetes, group, capacity=2)):
        _assert_same_run(fused, _single(spec, diabetes))


def test_batch_norm_skips_a_one_row_batch_as_train_mlp_does(wine: PreparedData) -> None:
    """Check that with 106 rows in batches of 35 the last one-row batch sits out and the runs still match."""
    specs = [
        SlotSpec(
            NetSpec((16, 8), (0.0, 0.0), "relu", normalization="batch"),
            TrainSettings(
                batch_size=35,
                epochs=3,
                seed=s,
                optimizer="sgd",
                lr_schedule="cosine",
                warmup=0.1,
            ),
        )
        for s in (0, 1)
    ]
    group = dataclasses.replace(GROUP, batch_size=35, normalization="batch")
    for spec, fused in zip(specs, train_fused(specs, wine, group, capacity=2)):
        single = _single(spec, wine)
        _assert_same_run(fused, single)
        # 3 batches per epoch, not 4: BatchNorm1d counts the batches it saw up to the best epoch.
        assert fused.state_dict["1.num_batches_tracked"].item() == 3 * fused.best_epoch


@pytest.mark.parametrize("normalization", ["layer", "batch"])
def test_normalized_padding_stays_exactly_zero(wine: PreparedData, normalization: str) -> None:
    """Check that with a norm layer a slot's row holds no nonzero beyond its own network's parameters."""
    population = Population(wine, dataclasses.replace(GROUP, max_width=16, normalization=normalization), capacity=3)
    specs = [
        _spec((8, 5), lr=1e-2, weight_decay=0.1, epochs=3, normalization=normalization),
        _spec((3,), optimizer="sgd", weight_decay=0.1, normalization=normalization),
    ]
    slots = [population.add(spec) for spec in specs]
    spare = population.add(specs[0])  # a slot emptied before training: its row must stay zero
    population.discard(spare)
    population.step_epoch()
    population.step_epoch()
    for slot, spec in zip(slots, specs):
        sizes = zip((wine.n_features, *spec.net.widths), (*spec.net.widths, wine.n_outputs))
        n_params = sum((fan_in + 1) * fan_out for fan_in, fan_out in sizes) + 2 * sum(spec.net.widths)
        assert torch.count_nonzero(population.params[slot]) == n_params
    assert torch.count_nonzero(population.params[spare]) == 0


def test_clipping_uses_each_slot_s_own_norm(wine: PreparedData) -> None:
    """Check that a clipping slot's numbers do not depend on its neighbour's gradients, clipped or not."""
    clipped = _spec((16, 8), lr=1e-2, epochs=3, seed=11, grad_clip=0.05)
    runs = [
        train_fused([clipped, _spec((24,), lr=lr, epochs=3, seed=12, grad_clip=clip)], wine, GROUP, capacity=2)[0]
        for lr, clip in ((1e-3, None), (5e-2, 0.5))
    ]
    assert runs[0].history == runs[1].history
    assert all(torch.equal(runs[0].state_dict[k], runs[1].state_dict[k]) for k in runs[0].state_dict)


def test_state_dict_loads_into_build_mlp_and_predicts_the_same(wine: PreparedData) -> None:
    """Check that a slot's weights load strictly into build_mlp's network and give the fused validation metric."""
    spec = _spec((12, 6), dropout=0.2, lr=1e-2, epochs=3, metric="log_loss")
    result = train_fused([spec], wine, GROUP, capacity=2)[0]
    model = build_mlp(wine.n_features, spec.net.widths, spec.net.dropouts, "relu", wine.n_outputs)
    model.load_state_dict(result.state_dict)  # strict: same keys (Dropout shifts the indices) and shapes
    model.eval()
    with torch.no_grad():
        proba = torch.softmax(model(torch.from_numpy(wine.x_val)), dim=1).numpy()
    picked = proba[np.arange(len(wine.y_val)), wine.y_val]
    # The fused forward pass (padded, batched) measured the same log loss at the best epoch.
    assert -np.log(picked).mean() == pytest.approx(result.best_value, abs=1e-5)


def _trajectory(population: Population, slot: int, epochs: int, other: int | None = None) -> list[torch.Tensor]:
    """The slot's parameter row after each epoch; `other` is refilled whenever it frees."""
    rows = []
    for _ in range(epochs):
        population.step_epoch()
        rows.append(population.params[slot].clone())
        if other is not None and other in population.free:
            population.add(_spec((32, 32), lr=5e-2, optimizer="sgd", epochs=1, seed=len(rows)))
    return rows


def test_refill_and_pruning_of_one_slot_leave_the_others_unchanged(wine: PreparedData) -> None:
    """Check that slot A's numbers are identical whether its neighbour runs on, is pruned or is refilled."""
    a = _spec((16, 8), lr=1e-2, epochs=6, seed=11)
    alone = Population(wine, GROUP, capacity=3)
    alone.add(a)
    alone.add(_spec((24,), lr=3e-3, epochs=6, seed=12))
    reference = _trajectory(alone, 0, 6)

    busy = Population(wine, GROUP, capacity=3)
    busy.add(a)
    busy.add(_spec((24,), lr=3e-3, epochs=6, seed=12), report=lambda epoch, value: epoch == 2)  # pruned at 2
    busy.add(_spec((8,), lr=1e-2, epochs=1, seed=13))  # finishes at epoch 1, then slot 2 keeps being refilled
    for expected, got in zip(reference, _trajectory(busy, 0, 6, other=2)):
        assert torch.equal(expected, got)


def test_a_report_returning_a_reason_stops_its_slot_with_it(wine: PreparedData) -> None:
    """Check that a string from a slot's report ends that slot as pruned with the string, as in train_mlp."""
    specs = [_spec((16,), lr=1e-2, epochs=5, seed=s) for s in (0, 1)]
    stop, go_on = train_fused(specs, wine, GROUP, 2, [lambda e, v: e == 2 and "time", None])
    assert (stop.status, stop.reason, stop.epochs_run) == ("pruned", "time", 2)
    assert (go_on.status, go_on.epochs_run) == ("completed", 5)


def test_train_seconds_is_the_slot_s_share_of_its_population_s_epochs(wine: PreparedData) -> None:
    """Check that time spent outside the population (another population's step, say) is not a slot's."""
    population = Population(wine, GROUP, capacity=2)
    population.add(_spec((16,), lr=1e-2, epochs=2, seed=0))
    population.add(_spec((8,), lr=1e-2, epochs=2, seed=1))
    population.step_epoch()
    time.sleep(0.3)  # the worker steps its other populations here
    results = [result for _, result in population.step_epoch()]
    assert len(results) == 2 and all(0 < r.train_seconds < 0.3 for r in results)
    assert results[0].train_seconds == results[1].train_seconds  # each epoch's time is split evenly


@pytest.mark.parametrize("embedding", ["none", "pl", "periodic"])
def test_a_diverging_slot_does_not_touch_the_others(wine: PreparedData, embedding: str) -> None:
    """Check that a slot whose loss becomes NaN ends as diverged and its neighbours' numbers do not change."""

    def spec(widths: tuple[int, ...], **settings: object) -> SlotSpec:
        return _with_net(_spec(widths, **settings), embedding=embedding, embedding_dim=4)

    group = dataclasses.replace(GROUP, embedding=embedding, embedding_dim=4)
    calm = [spec((16,), lr=1e-2, epochs=4, seed=s) for s in (0, 1)]
    wild = spec((32, 32), lr=1e12, optimizer="sgd", epochs=4, seed=2)
    with_wild = train_fused([calm[0], wild, calm[1]], wine, group, capacity=3)
    without = train_fused([calm[0], spec((32, 32), lr=1e-3, epochs=4, seed=2), calm[1]], wine, group, capacity=3)
    assert with_wild[1].status == "diverged"
    assert with_wild[1].reason.startswith("loss became")
    for got, expected in ((with_wild[0], without[0]), (with_wild[2], without[2])):
        assert got.history == expected.history
        assert all(torch.equal(got.state_dict[k], expected.state_dict[k]) for k in expected.state_dict)


def test_dropout_runs_match_train_mlp_in_distribution(wine: PreparedData) -> None:
    """Check that with dropout the final validation log loss over 20 seeds is paired-indistinguishable from train_mlp's."""
    specs = [_spec((32,), dropout=0.5, lr=1e-2, epochs=5, seed=s, metric="log_loss") for s in range(20)]
    fused = [r.history[-1] for r in train_fused(specs, wine, GROUP, capacity=20, seed=123)]
    single = [_single(spec, wine).history[-1] for spec in specs]
    # Same seeds give the same initial weights and batch order, so the pairs differ only by dropout masks.
    assert stats.ttest_rel(fused, single).pvalue > 0.01
    # Dropout is really on: the masks differ from train_mlp's, so the runs are not equal number for number.
    assert fused != single


def test_fused_unsupported_reason_names_options_it_does_not_handle() -> None:
    """Check that any TrainSettings field outside the fused whitelist with a non-default value is unsupported."""

    @dataclasses.dataclass(frozen=True)
    class FutureSettings(TrainSettings):
        mixup: float = 0.0

    net = NetSpec((8,), (0.0,), "relu")
    assert fused_unsupported_reason(net, FutureSettings()) is None
    reason = fused_unsupported_reason(net, FutureSettings(mixup=0.1))
    assert "mixup = 0.1" in reason
    # Every option of the training recipe is supported.
    recipe = TrainSettings(lr_schedule="onecycle", warmup=0.05, label_smoothing=0.1, grad_clip=1.0)
    for normalization in ("layer", "batch"):
        assert fused_unsupported_reason(NetSpec((8,), (0.0,), "relu", normalization=normalization), recipe) is None
    swish = SimpleNamespace(widths=(8,), dropouts=(0.0,), activation="swish")  # no NetSpec holds it: a future name
    assert fused_unsupported_reason(swish, TrainSettings()) == "the fused engine has no activation 'swish'"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"activation": "swish"}, "The 'activation' parameter of FusedGroup must be one of"),
        ({"batch_size": 0}, "The 'batch_size' parameter of FusedGroup must be an int >= 1. Got 0 instead."),
        ({"max_depth": -1}, "The 'max_depth' parameter of FusedGroup must be an int >= 0. Got -1 instead."),
        ({"max_width": 0}, "The 'max_width' parameter of FusedGroup must be an int >= 1. Got 0 instead."),
        ({"bf16": 1}, "The 'bf16' parameter of FusedGroup must be a bool. Got 1 instead."),
        ({"class_weight": "x"}, "The 'class_weight' parameter of FusedGroup must be one of"),
        ({"device": "tpu"}, "The 'device' parameter of TrainSettings must be one of"),
        ({"normalization": "group"}, "The 'normalization' parameter of FusedGroup must be one of"),
        ({"embedding": "quantile"}, "The 'embedding' parameter of FusedGroup must be one of"),
        ({"embedding_dim": 0}, "The 'embedding_dim' parameter of FusedGroup must be an int >= 1. Got 0 instead."),
    ],
)
def test_fused_group_rejects_bad_values(changes: dict, match: str) -> None:
    """Check that FusedGroup validates every field at construction."""
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(GROUP, **changes)


def test_population_rejects_bad_capacity_and_empty_validation(wine: PreparedData) -> None:
    """Check that Population needs a capacity >= 1, a validation split, and 2 training rows for batch norm."""
    one_row = dataclasses.replace(wine, x_train=wine.x_train[:1], y_train=wine.y_train[:1])
    with pytest.raises(ValueError, match="normalization 'batch' needs at least 2 training rows"):
        Population(one_row, dataclasses.replace(GROUP, normalization="batch"), 1)
    with pytest.raises(ValueError, match="The 'capacity' parameter of Population must be an int >= 1. Got 0 instead."):
        Population(wine, GROUP, 0)
    empty = dataclasses.replace(wine, x_val=wine.x_val[:0], y_val=wine.y_val[:0])
    with pytest.raises(ValueError, match="non-empty validation split"):
        Population(empty, GROUP, 1)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (_spec((64,)), r"widths \[64\] exceed the group's 3 layers of 32 units"),
        (_spec((8,) * 4), r"exceed the group's 3 layers"),
        (_spec((8,), activation="tanh"), "activation 'tanh' differs from the group's 'relu'"),
        (
            SlotSpec(NetSpec((8,), (0.0,), "relu"), TrainSettings(batch_size=64)),
            "batch_size 64 differs from the group's 32",
        ),
        (_spec((8,), class_weight="balanced"), "class_weight 'balanced' differs from the group's 'none'"),
        (_spec((8,), metric="rmse"), "The metric 'rmse' does not apply to classification"),
        (_spec((8,), normalization="layer"), "normalization 'layer' differs from the group's 'none'"),
        (_spec((8,), normalization="batch"), "normalization 'batch' differs from the group's 'none'"),
        (_with_net(_spec((8,)), embedding="pl"), "embedding 'pl' of 16 differs from the group's 'none' of 8"),
    ],
)
def test_add_rejects_runs_that_do_not_fit_the_group(wine: PreparedData, spec: SlotSpec, match: str) -> None:
    """Check that add names why a run cannot join the population."""
    with pytest.raises(ValueError, match=match):
        Population(wine, GROUP, 1).add(spec)


def test_add_rejects_label_smoothing_for_regression(diabetes: PreparedData) -> None:
    """Check that a regression run with label smoothing cannot join, as train_mlp refuses it."""
    with pytest.raises(ValueError, match="label_smoothing 0.1 applies to classification only"):
        Population(diabetes, GROUP, 1).add(_spec((8,), metric="rmse", label_smoothing=0.1))


def test_add_rejects_a_full_population_and_a_wide_input_without_hidden_layers(wine: PreparedData) -> None:
    """Check that add refuses when every slot is taken, and a depth-0 run whose inputs exceed max_width."""
    population = Population(wine, GROUP, 1)
    population.add(_spec((8,)))
    with pytest.raises(ValueError, match=r"The population is full \(1 slots\)"):
        population.add(_spec((8,)))
    narrow = Population(wine, dataclasses.replace(GROUP, max_width=8), 1)
    with pytest.raises(ValueError, match=r"a depth-0 slot needs max_width >= its inputs \(13\)"):
        narrow.add(_spec(()))
    # An embedding widens the inputs: 13 numeric features of 4 values each.
    embedded = Population(wine, dataclasses.replace(GROUP, embedding="pl", embedding_dim=4), 1)
    with pytest.raises(ValueError, match=r"a depth-0 slot needs max_width >= its inputs \(52\)"):
        embedded.add(_with_net(_spec(()), embedding="pl", embedding_dim=4))
    with pytest.raises(ValueError, match="embedding 'pl' of 8 differs from the group's 'pl' of 4"):
        embedded.add(_with_net(_spec((8,)), embedding="pl", embedding_dim=8))


@pytest.mark.parametrize("embedding", ["none", "pl"])
def test_padding_stays_exactly_zero_without_masks(wine: PreparedData, embedding: str) -> None:
    """Check that after training a slot's row holds no nonzero beyond its own network's parameters."""
    # Layers narrower than the 13 inputs, padded units, an empty slot and a shallower slot at once.
    group = dataclasses.replace(GROUP, max_width=8, embedding=embedding, embedding_dim=4)
    population = Population(wine, group, capacity=3)
    specs = [_spec((8, 5), lr=1e-2, weight_decay=0.1, epochs=3), _spec((3,), optimizer="sgd", weight_decay=0.1)]
    specs = [_with_net(spec, embedding=embedding, embedding_dim=4) for spec in specs]
    slots = [population.add(spec) for spec in specs]
    spare = population.add(specs[0])  # a slot emptied before training: its row must stay zero
    population.discard(spare)
    population.step_epoch()
    population.step_epoch()
    n_inputs, embedded = (13, 0) if embedding == "none" else (13 * 4, 13 * (4 * 4 + 4))
    assert population.n_inputs == n_inputs
    for slot, spec in zip(slots, specs):
        n_params = embedded + sum(
            (fan_in + 1) * fan_out
            for fan_in, fan_out in zip((n_inputs, *spec.net.widths), (*spec.net.widths, wine.n_outputs))
        )
        assert torch.count_nonzero(population.params[slot]) == n_params
    assert torch.count_nonzero(population.params[spare]) == 0


def test_discard_frees_a_slot_without_a_result(wine: PreparedData) -> None:
    """Check that a discarded slot is free again and step_epoch returns nothing for it."""
    population = Population(wine, GROUP, 2)
    slot = population.add(_spec((8,), epochs=1))
    population.discard(slot)
    assert population.free == [0, 1] and population.occupied == 0
    assert population.step_epoch() == []
    assert torch.count_nonzero(population.params) == 0


def test_stop_ends_a_run_early_with_its_best_epoch_and_the_others_go_on(wine: PreparedData) -> None:
    """Check that stop returns a pruned result with the reason, the best epoch's metrics and weights, frees the
    slot, and leaves the other slot's run as it would have been."""
    specs = [_spec((16,), lr=1e-2, epochs=4, seed=1), _spec((8,), lr=1e-2, epochs=4, seed=2)]
    population = Population(wine, GROUP, 2)
    slots = [population.add(spec) for spec in specs]
    assert population.best_value(slots[0]) is None
    population.step_epoch()
    population.step_epoch()
    best = population.best_value(slots[0])
    stopped = population.stop(slots[0], "stopped for this test")
    assert (stopped.status, stopped.reason, stopped.epochs_run, stopped.best_value) == (
        "pruned",
        "stopped for this test",
        2,
        best,
    )
    assert stopped.metrics["val_accuracy"] == pytest.approx(best) and stopped.state_dict is not None
    assert population.free == [slots[0]]
    finished = []
    while population.occupied:
        finished += population.step_epoch()
    assert [slot for slot, _ in finished] == [slots[1]]
    _assert_same_run(finished[0][1], _single(specs[1], wine))


def test_stop_and_best_value_name_an_empty_slot(wine: PreparedData) -> None:
    """Check that asking for a slot without a run names the slot."""
    population = Population(wine, GROUP, 2)
    with pytest.raises(ValueError, match=r"Slot 1 of the population holds no run \(occupied: 0\)"):
        population.stop(1, "why")
    with pytest.raises(ValueError, match=r"Slot 5 of the population holds no run"):
        population.best_value(5)


def _runs_joining_mid_way(data: PreparedData, normalization: str, optimizer: str) -> None:
    """Runs that join a population at epochs 0, 2 and 3, growing its rows 1 -> 2 -> 3, against train_mlp."""
    group = dataclasses.replace(GROUP, normalization=normalization)
    specs = [
        _spec((16, 8), lr=1e-2, optimizer=optimizer, epochs=5, seed=s, normalization=normalization) for s in range(3)
    ]
    population = Population(data, group, capacity=3)
    assert population.params.shape[0] == 1 and population.free == [0, 1, 2]
    results: dict[int, TrainResult] = {}
    owner = {population.add(specs[0]): 0}
    population.step_epoch()
    population.step_epoch()
    before = population.params[0].clone()
    owner[population.add(specs[1])] = 1  # grows to 2 rows while run 0 is at epoch 2
    assert population.params.shape[0] == 2 and torch.equal(population.params[0], before)
    population.step_epoch()
    owner[population.add(specs[2])] = 2  # and to 3, the capacity
    assert population.params.shape[0] == 3 and population.free == []
    while population.occupied:
        for slot, result in population.step_epoch():
            results[owner.pop(slot)] = result
    for position in range(3):
        _assert_same_run(results[position], _single(specs[position], data))


@pytest.mark.parametrize(("normalization", "optimizer"), [("none", "adam"), ("batch", "sgd"), ("layer", "adamw")])
def test_a_population_grows_its_rows_as_runs_join_without_changing_the_running_ones(
    wine: PreparedData, normalization: str, optimizer: str
) -> None:
    """Check that rows are allocated as slots are used (1, then doubling up to capacity) and that a run
    joining mid-way leaves the earlier runs' weights, optimizer state and norm statistics as train_mlp's."""
    _runs_joining_mid_way(wine, normalization, optimizer)


def test_trim_drops_the_empty_rows_after_the_last_run_and_it_goes_on_unchanged(wine: PreparedData) -> None:
    """Check that trim frees the trailing rows of stopped runs and the remaining run still equals train_mlp's."""
    specs = [_spec((16,), lr=1e-2, optimizer="adam", epochs=4, seed=s) for s in range(3)]
    population = Population(wine, GROUP, capacity=4)
    slots = [population.add(spec) for spec in specs]
    population.step_epoch()
    for slot in slots[1:]:
        population.stop(slot, "stopped for this test")
    population.trim()
    assert population.params.shape[0] == 1 and population.free == [1, 2, 3]
    finished = []
    while population.occupied:
        finished += population.step_epoch()
    _assert_same_run(finished[0][1], _single(specs[0], wine))
    with pytest.raises(ValueError, match=r"Slot 0 of the population holds no run"):
        population.discard(0)
