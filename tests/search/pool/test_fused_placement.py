"""Tests for the fused worker's placement of trials into populations by size (no processes, no Optuna)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from archsearch.pool._fused_worker import _population_for
from archsearch.spaces import NetSpec
from archsearch.trainers import FusedGroup, SlotSpec, TrainSettings, padding_acceptable, size_bucket
from archsearch.trainers.data import DataSpec, PreparedData, load_data


@pytest.fixture(scope="module")
def digits() -> PreparedData:
    return load_data(DataSpec(dataset="digits"))  # 64 features, 10 classes


def _objective(
    data: PreparedData, slots: int, layers: tuple[int, int] = (0, 3), width: tuple[int, int] = (16, 512)
) -> SimpleNamespace:
    config = SimpleNamespace(train=SimpleNamespace(slots=slots), space=SimpleNamespace(layers=layers, width=width))
    return SimpleNamespace(data=data, config=config)


def _spec(widths: tuple[int, ...], embedding: str = "none", embedding_dim: int = 16, **settings: object) -> SlotSpec:
    net = NetSpec(widths, (0.0,) * len(widths), "relu", embedding=embedding, embedding_dim=embedding_dim)
    return SlotSpec(net, TrainSettings(epochs=2, **settings))


def _placed(spec: SlotSpec, objective: SimpleNamespace, populations: list):
    population = _population_for(spec, objective, populations)
    if population not in populations:
        populations.append(population)
    population.add(spec)
    return population


def test_size_bucket_and_padding_rule() -> None:
    """Check the bucket of a new population and when padding is worth joining an existing one."""
    assert size_bucket([48, 20]) == (2, 64)
    assert size_bucket([128, 130]) == (2, 256)
    assert size_bucket([]) == (0, 1)
    group = FusedGroup("relu", max_depth=3, max_width=128)
    # 3 x 128 on 64 inputs is 42,240 multiply-adds a row: a 1-layer network of 100 (7,400) would pay 5.7x.
    assert not padding_acceptable(64, [100], 10, group)
    assert padding_acceptable(64, [128, 100, 64], 10, group)  # 35,840: 1.2x
    # Small populations are joined whatever the ratio: their padded arithmetic is below a step's overhead.
    assert padding_acceptable(64, [4], 10, FusedGroup("relu", max_depth=2, max_width=64))
    # On CUDA a step is launch-bound up to 512 x 512 a layer, so padding below that is free there.
    assert not padding_acceptable(64, [8], 10, FusedGroup("relu", max_depth=2, max_width=256, device="cpu"))
    assert padding_acceptable(64, [8], 10, FusedGroup("relu", max_depth=2, max_width=256, device="cuda"))


def test_trials_join_a_population_of_about_their_size_and_open_one_otherwise(digits: PreparedData) -> None:
    """Check that similar networks share a population, and a much smaller or differently grouped one does not."""
    objective, populations = _objective(digits, slots=8), []
    first = _placed(_spec((48, 20)), objective, populations)
    assert (first.group.max_depth, first.group.max_width) == (2, 64)
    assert _placed(_spec((64, 32)), objective, populations) is first
    assert _placed(_spec((8,)), objective, populations) is first  # small: padded to 2 x 64 all the same
    large = _placed(_spec((128, 128, 100)), objective, populations)
    assert (large.group.max_depth, large.group.max_width) == (3, 128)
    wide_single = _placed(_spec((100,)), objective, populations)
    assert wide_single is not large and (wide_single.group.max_depth, wide_single.group.max_width) == (1, 128)
    other_batch = _placed(_spec((48, 20), batch_size=64), objective, populations)
    assert other_batch is not first and other_batch.group.batch_size == 64
    assert [p.occupied for p in populations] == [3, 1, 1, 1]


def test_a_space_whose_largest_network_is_free_to_pad_trains_in_one_population(digits: PreparedData) -> None:
    """Check that a new population is sized for the space's largest network when that padding is free."""
    # 2 x 64 on 64 inputs and 10 outputs is 8,832 multiply-adds a row: below the CPU's free padding.
    objective, populations = _objective(digits, slots=8, layers=(0, 2), width=(8, 64)), []
    first = _placed(_spec((8,)), objective, populations)
    assert (first.group.max_depth, first.group.max_width) == (2, 64)
    for widths in ((64, 64), (16,), (33, 9), ()):
        assert _placed(_spec(widths), objective, populations) is first
    assert populations == [first] and first.occupied == 5
    # A linear network opens a population of its own when the inputs would not pass through the hidden units.
    narrow, populations = _objective(digits, slots=8, layers=(0, 1), width=(8, 32)), []
    assert (_placed(_spec(()), narrow, populations).group.max_depth, len(populations)) == (0, 1)


def test_an_embedded_trial_joins_its_embedding_s_populations_sized_by_its_inputs(digits: PreparedData) -> None:
    """Check that embedded and plain trials never share a population, and that padding costs count embedded inputs."""
    objective, populations = _objective(digits, slots=8, layers=(0, 2), width=(8, 64)), []
    plain = _placed(_spec((8,)), objective, populations)
    assert (plain.group.max_depth, plain.group.max_width) == (2, 64)  # 8,832 multiply-adds a row: free
    pl = _spec((8,), embedding="pl", embedding_dim=16)
    embedded = _placed(pl, objective, populations)
    # 64 features x 16 values: 1,024 inputs make 2 x 64 cost 70,272 multiply-adds a row, not free on the CPU,
    # so the population is sized by the trial's own bucket (1 x 8: 8,272, free).
    assert embedded is not plain
    assert (embedded.group.embedding, embedded.group.max_depth, embedded.group.max_width) == ("pl", 1, 8)
    assert (
        _placed(
            dataclasses.replace(pl, net=dataclasses.replace(pl.net, widths=(6,), dropouts=(0.0,))),
            objective,
            populations,
        )
        is embedded
    )
    assert _placed(_spec((6,)), objective, populations) is plain
    other_size = dataclasses.replace(pl, net=dataclasses.replace(pl.net, embedding_dim=8))
    assert _placed(other_size, objective, populations) not in (plain, embedded)


def test_a_trial_joins_the_fullest_population_whose_padding_is_free(digits: PreparedData) -> None:
    """Check that among populations that cost no more than a smaller one, the fuller one is joined."""
    objective = _objective(digits, slots=8)  # the default space: 3 x 512 is not free on the CPU
    small = _placed(_spec((9,)), objective, [])
    assert (small.group.max_depth, small.group.max_width) == (1, 16)
    populations = [small]
    full = _placed(_spec((64, 40)), objective, populations)
    _placed(_spec((64, 40)), objective, populations)
    assert (full.group.max_depth, full.group.max_width, full.occupied, small.occupied) == (2, 64, 2, 1)
    # Both populations are free to pad on the CPU: the 1-layer trial joins the fuller one, not the smaller.
    assert _placed(_spec((12,)), objective, populations) is full
    # Where padding is not free the smaller population still wins: see the test above (the 1 x 128 trial).


def test_full_populations_open_another_and_empty_ones_are_dropped_beyond_slots(digits: PreparedData) -> None:
    """Check that a full population is not overfilled, and that empty populations do not pile up."""
    objective, populations = _objective(digits, slots=2), []
    first = _placed(_spec((64, 32)), objective, populations)
    assert _placed(_spec((64, 32)), objective, populations) is first
    second = _placed(_spec((64, 32)), objective, populations)
    assert second is not first and first.occupied == 2
    for index in range(2):
        first.discard(index)
    third = _placed(_spec((128, 128, 128)), objective, populations)
    # The empty population made room (at most `slots` populations): the full one and the new one remain.
    assert populations == [second, third]


@pytest.mark.parametrize("value", [0.5, 0.9])
def test_fused_pruning_reads_complete_trials_once_and_decides_as_should_prune(value: float) -> None:
    """Check that the fused reporter's median-pruner decision equals Trial.should_prune, from one read per round."""
    import optuna

    from archsearch.pool._fused_worker import _CompleteTrials, _reporter

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for final in (0.7, 0.8, 0.85):
        study.add_trial(
            optuna.trial.create_trial(
                value=final, intermediate_values={1: final - 0.1, 2: final}, params={}, distributions={}
            )
        )
    trial, twin = study.ask(), study.ask()
    complete = _CompleteTrials(study)
    reads = []
    real = study.get_trials
    study.get_trials = lambda *a, **k: reads.append(k.get("states")) or real(*a, **k)  # type: ignore[method-assign]
    report = _reporter(trial, 1, complete)
    steps = ((1, value - 0.1), (2, value))
    decisions = [report(epoch, reported) for epoch, reported in steps]
    study.get_trials = real  # type: ignore[method-assign]
    expected = []
    for epoch, reported in steps:
        twin.report(reported, epoch)
        expected.append(twin.should_prune())
    assert decisions == expected == [value < 0.8] * 2
    assert reads == [(optuna.trial.TrialState.COMPLETE,)]  # one read for both epochs: no refresh between them


def test_fused_reporter_stops_its_slot_when_the_search_s_time_is_up() -> None:
    """Check that the fused reporter returns the time-up reason (the slot then ends as pruned) without the pruner."""
    import optuna

    from archsearch.pool._fused_worker import _reporter
    from archsearch.pool._objective import time_up_reason

    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=0))
    trial = study.ask()
    up = iter([False, True])
    report = _reporter(trial, 1, None, lambda: next(up))
    assert report(1, 0.5) is False
    assert report(2, 0.6) == time_up_reason(2)
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {1: 0.5, 2: 0.6}
