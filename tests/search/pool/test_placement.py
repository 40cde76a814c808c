"""Tests of worker placement: GPUs and CPU cores to worker slots, and every refusal."""

from __future__ import annotations

from collections import Counter

import pytest

from archsearch.pool._placement import PlacementError, plan_workers


def test_plan_workers_two_gpus_three_per_gpu_is_balanced() -> None:
    """Check that 2 GPUs x 3 trials per GPU gives 6 workers, 3 on each GPU, each seeing only its GPU."""
    slots = plan_workers(cpu_count=12, visible_gpus=2, trials_per_gpu=3)
    assert len(slots) == 6
    assert Counter(s.gpu for s in slots) == {0: 3, 1: 3}
    assert {s.env["CUDA_VISIBLE_DEVICES"] for s in slots} == {"0", "1"}
    assert all(s.device == "cuda" and s.threads == 2 for s in slots)


def test_plan_workers_listed_gpus_only() -> None:
    """Check that --gpus restricts workers to the listed GPUs."""
    slots = plan_workers(cpu_count=8, visible_gpus=4, gpus=[1, 3], trials_per_gpu=2)
    assert [s.gpu for s in slots] == [1, 3, 1, 3]


def test_plan_workers_cpu_default_one_per_core_one_thread() -> None:
    """Check that without GPUs there is one worker per core with one torch thread each."""
    slots = plan_workers(cpu_count=4, visible_gpus=0)
    assert [(s.device, s.gpu, s.threads) for s in slots] == [("cpu", None, 1)] * 4
    assert slots[0].env == {"CUDA_VISIBLE_DEVICES": ""}


def test_plan_workers_cpu_threads_share_the_cores() -> None:
    """Check that fewer workers than cores split the cores, and more workers never get more than one thread."""
    assert [s.threads for s in plan_workers(cpu_count=8, visible_gpus=0, workers=2)] == [4, 4]
    assert [s.threads for s in plan_workers(cpu_count=2, visible_gpus=0, workers=4)] == [1, 1, 1, 1]


def test_plan_workers_device_cpu_ignores_gpus() -> None:
    """Check that [train] device = 'cpu' keeps workers off the GPUs."""
    assert {s.device for s in plan_workers(cpu_count=2, visible_gpus=2, device="cpu")} == {"cpu"}


def test_plan_workers_device_cuda_n_pins_that_gpu() -> None:
    """Check that device 'cuda:1' places workers on GPU 1."""
    assert {s.gpu for s in plan_workers(cpu_count=4, visible_gpus=2, device="cuda:1", trials_per_gpu=2)} == {1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"visible_gpus": 2, "gpus": [0, 2]},
            r"The 'gpus' parameter must list GPU indices from 0 to 1 \(2 visible\)\. Got 2 instead\.",
        ),
        ({"visible_gpus": 0, "gpus": [0]}, r"CUDA was asked for \(--gpus 0\) but no GPU is visible"),
        ({"visible_gpus": 0, "device": "cuda"}, r"CUDA was asked for \(device 'cuda'\) but no GPU is visible"),
        ({"visible_gpus": 2, "gpus": []}, r"The 'gpus' parameter must list at least one GPU index"),
        ({"visible_gpus": 2, "gpus": [1, 1]}, r"The 'gpus' parameter must not repeat an index\. Got \[1, 1\]"),
        (
            {"visible_gpus": 0, "workers": 0},
            r"The 'workers' parameter must be an int in the range \[1, 1024\]\. Got 0 instead\.",
        ),
        (
            {"visible_gpus": 0, "workers": 10000},
            r"The 'workers' parameter must be an int in the range \[1, 1024\]\. Got 10000 instead\.",
        ),
        (
            {"visible_gpus": 1, "trials_per_gpu": 0},
            r"The 'trials_per_gpu' parameter must be an int >= 1\. Got 0 instead\.",
        ),
    ],
)
def test_plan_workers_rejects_impossible_placements(kwargs: dict, message: str) -> None:
    """Check that each impossible placement names the parameter, the rule and the value."""
    with pytest.raises(PlacementError, match=message):
        plan_workers(cpu_count=4, **kwargs)


def test_engine_auto_is_single_on_a_cpu_and_fused_on_a_gpu_for_networks_up_to_512_wide() -> None:
    """Check the engine `auto` picks for each kind of worker slot, and that a named engine is kept."""
    from archsearch.config import SearchConfig
    from archsearch.pool._worker import choose_engine

    cpu, gpu = plan_workers(cpu_count=2, visible_gpus=0)[0], plan_workers(cpu_count=2, visible_gpus=1)[0]
    config = SearchConfig.from_dict({"space": {"width": [16, 512]}})
    assert config.train.engine == "auto"
    assert choose_engine(config, cpu)[0] == "single"
    # The default space searches the "pl" embedding, which trains fused too: nothing to add.
    assert choose_engine(config, gpu) == ("fused", "engine auto on a GPU: fused, 16 slots (widths up to 512)")
    wide = SearchConfig.from_dict({"space": {"width": [16, 1024]}})
    assert choose_engine(wide, gpu) == ("single", "engine auto on a GPU: the single engine (widths up to 1024 > 512)")
    named = SearchConfig.from_dict({"train": {"engine": "fused"}})
    assert choose_engine(named, cpu) == ("fused", "engine fused ([train] engine)")
