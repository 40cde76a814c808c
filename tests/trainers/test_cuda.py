"""Tests of the CUDA paths (trainer, bf16, search workers per GPU, export of GPU weights).

They need a GPU and skip without one; `benchmarks/gpu_check.sh` runs them on a GPU machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.spaces import NetSpec
from archsearch.trainers import TrainSettings, load_model, train_mlp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

FAST = {"batch_size": 64, "epochs": 6, "lr": 1e-2}


@pytest.fixture(scope="module")
def digits():
    from archsearch.trainers.data import DataSpec, load_data

    return load_data(DataSpec(dataset="digits", seed=0))


def test_train_mlp_on_cuda_learns_and_returns_cpu_weights(digits) -> None:
    """Check that training on CUDA reaches CPU-like accuracy and hands back weights on the CPU."""
    result = train_mlp(NetSpec([64], [0.1], "relu"), digits, TrainSettings(device="cuda", **FAST))
    assert result.status == "completed"
    assert result.device.startswith("cuda")
    assert result.metrics["val_accuracy"] >= 0.9
    assert all(t.device.type == "cpu" for t in result.state_dict.values())
    on_cpu = train_mlp(NetSpec([64], [0.1], "relu"), digits, TrainSettings(device="cpu", **FAST))
    # Same seed, other kernels: the accuracies agree closely but need not be equal bit for bit.
    assert abs(result.metrics["val_accuracy"] - on_cpu.metrics["val_accuracy"]) <= 0.05


def test_train_mlp_on_cuda_is_repeatable_with_a_seed(digits) -> None:
    """Check that one seed gives the same weights twice on CUDA (init, batch order, dropout masks)."""
    first = train_mlp(NetSpec([32, 32], [0.3, 0.3], "gelu"), digits, TrainSettings(device="cuda", seed=3, **FAST))
    second = train_mlp(NetSpec([32, 32], [0.3, 0.3], "gelu"), digits, TrainSettings(device="cuda", seed=3, **FAST))
    assert first.history == second.history
    assert all(torch.equal(t, second.state_dict[name]) for name, t in first.state_dict.items())


def test_train_mlp_bf16_autocast_trains(digits) -> None:
    """Check that bf16 autocast runs end to end on CUDA and still learns digits."""
    result = train_mlp(NetSpec([64], [0.0], "relu"), digits, TrainSettings(device="cuda", bf16=True, **FAST))
    assert result.status == "completed"
    assert result.metrics["val_accuracy"] >= 0.85
    assert all(t.dtype == torch.float32 for t in result.state_dict.values())


def test_train_mlp_names_a_missing_gpu_index(digits) -> None:
    """Check that an index past the visible GPUs is refused with the count in the message."""
    index = torch.cuda.device_count()
    with pytest.raises(ValueError, match=rf"'cuda:{index}' but only {index} CUDA device\(s\) are visible"):
        train_mlp(NetSpec([8], [0.0], "relu"), digits, TrainSettings(device=f"cuda:{index}", **FAST))


def _search_on_gpu_0(tmp_path: Path, name: str, n_trials: int, trials_per_gpu: int):
    """A short digits search on GPU 0 (the default engine); returns its storage URL and study."""
    from archsearch import SearchConfig, run_search

    url = f"sqlite:///{tmp_path}/search.db"
    config = SearchConfig.from_dict(
        {
            "study": {"name": name, "storage": url, "n_trials": n_trials, "seed": 0},
            "data": {"dataset": "digits"},
            # No embedding: these tests' figures and shapes predate it (fused trials with one are tested on the CPU).
            "space": {"layers": [0, 2], "width": [16, 64], "batch_size": [64], "embedding": "none"},
            "train": {"epochs": 5, "patience": 5, "device": "cuda"},
        }
    )
    return url, run_search(config, workers=None, gpus=[0], trials_per_gpu=trials_per_gpu, log_dir=tmp_path / "logs")


@pytest.mark.timeout(300)
def test_search_on_cuda_with_two_workers_per_gpu_exports_a_cpu_model(tmp_path: Path) -> None:
    """Check that a pool of 2 workers on GPU 0 trains every trial on CUDA, and that export loads on the CPU."""
    from archsearch.export import export_best

    url, study = _search_on_gpu_0(tmp_path, "cuda", n_trials=6, trials_per_gpu=2)
    finished = [t for t in study.trials if t.state.is_finished() and "device" in t.user_attrs]
    assert len([t for t in finished if t.state.name in ("COMPLETE", "PRUNED")]) == 6
    assert {t.user_attrs["device"] for t in finished} == {"cuda:0"}
    assert len({t.user_attrs["worker"] for t in finished}) == 2

    # Without the refit, so that the exported weights are the GPU-trained trial's own (a refit trains anew).
    folder = export_best(url, "cuda", tmp_path / "model", refit=False)
    model = load_model(folder)
    from archsearch.trainers.data import DataSpec, load_data

    data = load_data(DataSpec(dataset="digits", seed=0))
    predictions = model.predict(data.raw_test)
    accuracy = float(np.mean(predictions == data.preprocessing.decode_labels(data.y_test)))
    assert accuracy == pytest.approx(study.best_trial.user_attrs["test_accuracy"], abs=0.02)


# The fused engine on CUDA: the CPU suite (test_fused.py) proves slot = single run on the CPU; these prove
# it on the GPU, where the batched products use other kernels than the single engine's linear layers.
def _fused_spec(widths: tuple[int, ...], **settings: object):
    from archsearch.trainers import SlotSpec

    return SlotSpec(
        NetSpec(widths, (0.0,) * len(widths), "relu"), TrainSettings(batch_size=64, device="cuda", **settings)
    )


@pytest.mark.parametrize("embedding", ["none", "pl"])
def test_fused_population_on_cuda_matches_train_mlp_on_cuda(digits, embedding: str) -> None:
    """Check that slots of mixed depths, widths, lrs and optimizers equal the single engine's runs on CUDA, with
    and without a pl embedding (whose first layer the fused engine computes folded)."""
    import dataclasses

    from archsearch.trainers import FusedGroup, train_fused

    from .test_fused import _single  # train_mlp with the spec's own arguments

    specs = [
        _fused_spec((64,), lr=1e-2, epochs=4, seed=1),
        _fused_spec((32, 48), lr=3e-3, optimizer="adamw", weight_decay=0.1, epochs=5, seed=2),
        _fused_spec((), lr=5e-2, optimizer="sgd", epochs=3, seed=3),
        _fused_spec((64, 16, 24), lr=1e-3, epochs=6, seed=4, metric="log_loss"),
    ]
    if embedding != "none":  # 64 features x 4 values: a linear slot's 256 inputs would not pass through 64 units
        specs = [
            dataclasses.replace(s, net=dataclasses.replace(s.net, embedding=embedding, embedding_dim=4))
            for s in specs
            if s.net.widths
        ]
    group = FusedGroup(
        "relu", batch_size=64, max_depth=3, max_width=64, device="cuda", embedding=embedding, embedding_dim=4
    )
    results = train_fused(specs, digits, group, capacity=2)
    for spec, fused in zip(specs, results):
        single = _single(spec, digits)
        assert fused.device.startswith("cuda")
        assert (fused.status, fused.epochs_run, fused.n_params) == (single.status, single.epochs_run, single.n_params)
        gap = max(abs(a - b) for a, b in zip(fused.history, single.history))
        assert gap <= 1e-4, f"per-epoch validation metrics differ by up to {gap:.2e} for {spec.net.widths}"
        for name, tensor in single.state_dict.items():
            torch.testing.assert_close(fused.state_dict[name], tensor, rtol=1e-3, atol=1e-4)


def test_fused_diverging_slot_on_cuda_leaves_the_others_unchanged(digits) -> None:
    """Check that a NaN in one CUDA slot ends that slot only, bit for bit, as on the CPU."""
    from archsearch.trainers import FusedGroup, train_fused

    group = FusedGroup("relu", batch_size=64, max_depth=2, max_width=64, device="cuda")
    calm = [_fused_spec((32,), lr=1e-2, epochs=3, seed=s) for s in (0, 1)]
    wild = _fused_spec((64, 64), lr=1e12, optimizer="sgd", epochs=3, seed=2)
    with_wild = train_fused([calm[0], wild, calm[1]], digits, group, capacity=3)
    without = train_fused([calm[0], _fused_spec((64, 64), lr=1e-3, epochs=3, seed=2), calm[1]], digits, group, 3)
    assert with_wild[1].status == "diverged"
    for got, expected in ((with_wild[0], without[0]), (with_wild[2], without[2])):
        assert got.history == expected.history
        assert all(torch.equal(got.state_dict[k], expected.state_dict[k]) for k in expected.state_dict)


@pytest.mark.timeout(300)
def test_search_on_cuda_with_engine_auto_runs_fused_trials(tmp_path: Path) -> None:
    """Check that `engine = "auto"` on a GPU trains narrow spaces fused, and that those trials export."""
    from archsearch.export import export_best

    url, study = _search_on_gpu_0(tmp_path, "cuda-fused", n_trials=8, trials_per_gpu=1)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 8
    assert {t.user_attrs["engine"] for t in finished} == {"fused"}
    assert {t.user_attrs["device"] for t in finished} == {"cuda:0"}
    model = load_model(export_best(url, "cuda-fused", tmp_path / "model"))
    assert model.predict(np.zeros((2, 64), dtype=np.float32)).shape == (2,)
