"""Tests for the fused engine's optimizer: the vectorized path (CUDA's default) against the fused kernels."""

from __future__ import annotations

import functools

import pytest
import torch

import archsearch.trainers.fused._population as fused_module
from archsearch.trainers.data import DataSpec, PreparedData, load_data
from archsearch.trainers.fused import StackedOptimizer

from .test_fused import GROUP, MIXED, _assert_same_run, _runs_joining_mid_way, _single, _spec


@pytest.fixture(scope="module")
def wine() -> PreparedData:
    return load_data(DataSpec(dataset="wine"))


def _pair(capacity: int, n_params: int) -> tuple[StackedOptimizer, StackedOptimizer]:
    cpu = torch.device("cpu")
    return StackedOptimizer(capacity, n_params, cpu), StackedOptimizer(capacity, n_params, cpu, vectorized=True)


def test_vectorized_steps_equal_the_fused_kernels_per_row() -> None:
    """Check Adam, AdamW and SGD rows with their own lrs and decays, a schedule, a refill and an empty slot."""
    generator = torch.Generator().manual_seed(0)
    n_params = 50
    start = torch.randn(5, n_params, generator=generator)
    start[:, 40:] = 0.0  # padded entries: zero weights that get zero gradients
    kernels, vectorized = _pair(5, n_params)
    slots = [("adam", 1e-2, 0.0), ("adamw", 3e-3, 0.1), ("sgd", 5e-2, 1e-3), ("adam", 1e-3, 1e-2)]
    for optimizer in (kernels, vectorized):
        for index, (kind, lr, decay) in enumerate(slots):  # slot 4 stays empty
            optimizer.reset(index, kind, lr, decay)
    params = {id(o): start.clone() for o in (kernels, vectorized)}
    for step in range(12):
        grads = torch.randn(5, n_params, generator=generator)
        grads[:, 40:] = 0.0
        if step == 6:  # slot 0 is refilled with an SGD run; slot 1 follows a schedule from here on
            for optimizer in (kernels, vectorized):
                optimizer.reset(0, "sgd", 2e-2, 0.0)
                params[id(optimizer)][0] = start[0]
        for optimizer in (kernels, vectorized):
            if step >= 6:
                optimizer.set_lr(1, 3e-3 * (12 - step) / 6)
            optimizer.step(params[id(optimizer)], grads)
    got, expected = params[id(vectorized)], params[id(kernels)]
    torch.testing.assert_close(got[:4], expected[:4], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(vectorized.m[:4], kernels.m[:4], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(vectorized.v[:4], kernels.v[:4], rtol=1e-5, atol=1e-7)
    assert torch.equal(got[:, 40:], torch.zeros(5, 10))  # padding stays exactly zero
    assert torch.equal(got[4], start[4])  # the empty slot is not touched


def test_vectorized_nan_stays_in_its_row() -> None:
    """Check that a NaN gradient in one row leaves every other row's update unchanged."""
    _, clean = _pair(3, 8)
    _, poisoned = _pair(3, 8)
    for optimizer in (clean, poisoned):
        for index, kind in enumerate(("adam", "sgd", "adamw")):
            optimizer.reset(index, kind, 1e-2, 0.1)
    params = {id(o): torch.ones(3, 8) for o in (clean, poisoned)}
    grads = torch.full((3, 8), 0.5)
    bad = grads.clone()
    bad[1, 3] = float("nan")
    clean.step(params[id(clean)], grads)
    poisoned.step(params[id(poisoned)], bad)
    assert torch.isnan(params[id(poisoned)][1]).any()
    for row in (0, 2):
        assert torch.equal(params[id(poisoned)][row], params[id(clean)][row])


def test_population_with_the_vectorized_optimizer_matches_train_mlp(
    monkeypatch: pytest.MonkeyPatch, wine: PreparedData
) -> None:
    """Check that a mixed population stepped by the vectorized path still equals train_mlp's runs."""
    monkeypatch.setattr(fused_module, "StackedOptimizer", functools.partial(StackedOptimizer, vectorized=True))
    specs = [*MIXED[:4], _spec((16, 8), lr=1e-2, epochs=4, seed=7, lr_schedule="cosine")]
    for spec, result in zip(specs, fused_module.train_fused(specs, wine, GROUP, capacity=3)):
        _assert_same_run(result, _single(spec, wine))


def test_a_population_growing_mid_run_with_the_vectorized_optimizer_matches_train_mlp(
    monkeypatch: pytest.MonkeyPatch, wine: PreparedData
) -> None:
    """Check that growing the rows keeps the vectorized path's per-slot state (moments, step counts, rates)."""
    monkeypatch.setattr(fused_module, "StackedOptimizer", functools.partial(StackedOptimizer, vectorized=True))
    _runs_joining_mid_way(wine, "none", "adam")
    _runs_joining_mid_way(wine, "none", "sgd")
