"""Tests of the CUDA paths (trainer, bf16, search workers per GPU, export of GPU weights).

They need a GPU and skip without one; `benchmarks/gpu_check.sh` runs them on a GPU machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.trainers import TrainSettings, load_model, train_mlp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

FAST = {"batch_size": 64, "epochs": 6, "lr": 1e-2}


@pytest.fixture(scope="module")
def digits():
    from archsearch.trainers.data import DataSpec, load_data

    return load_data(DataSpec(dataset="digits", seed=0))


def test_train_mlp_on_cuda_learns_and_returns_cpu_weights(digits) -> None:
    """Check that training on CUDA reaches CPU-like accuracy and hands back weights on the CPU."""
    result = train_mlp([64], [0.1], "relu", digits, TrainSettings(device="cuda", **FAST))
    assert result.status == "completed"
    assert result.device.startswith("cuda")
    assert result.metrics["val_accuracy"] >= 0.9
    assert all(t.device.type == "cpu" for t in result.state_dict.values())
    on_cpu = train_mlp([64], [0.1], "relu", digits, TrainSettings(device="cpu", **FAST))
    # Same seed, other kernels: the accuracies agree closely but need not be equal bit for bit.
    assert abs(result.metrics["val_accuracy"] - on_cpu.metrics["val_accuracy"]) <= 0.05


def test_train_mlp_on_cuda_is_repeatable_with_a_seed(digits) -> None:
    """Check that one seed gives the same weights twice on CUDA (init, batch order, dropout masks)."""
    first = train_mlp([32, 32], [0.3, 0.3], "gelu", digits, TrainSettings(device="cuda", seed=3, **FAST))
    second = train_mlp([32, 32], [0.3, 0.3], "gelu", digits, TrainSettings(device="cuda", seed=3, **FAST))
    assert first.history == second.history
    assert all(torch.equal(t, second.state_dict[name]) for name, t in first.state_dict.items())


def test_train_mlp_bf16_autocast_trains(digits) -> None:
    """Check that bf16 autocast runs end to end on CUDA and still learns digits."""
    result = train_mlp([64], [0.0], "relu", digits, TrainSettings(device="cuda", bf16=True, **FAST))
    assert result.status == "completed"
    assert result.metrics["val_accuracy"] >= 0.85
    assert all(t.dtype == torch.float32 for t in result.state_dict.values())


def test_train_mlp_names_a_missing_gpu_index(digits) -> None:
    """Check that an index past the visible GPUs is refused with the count in the message."""
    index = torch.cuda.device_count()
    with pytest.raises(ValueError, match=rf"'cuda:{index}' but only {index} CUDA device\(s\) are visible"):
        train_mlp([8], [0.0], "relu", digits, TrainSettings(device=f"cuda:{index}", **FAST))


@pytest.mark.timeout(300)
def test_search_on_cuda_with_two_workers_per_gpu_exports_a_cpu_model(tmp_path: Path) -> None:
    """Check that a pool of 2 workers on GPU 0 trains every trial on CUDA, and that export loads on the CPU."""
    from archsearch import SearchConfig, run_search
    from archsearch.export import export_best

    url = f"sqlite:///{tmp_path}/search.db"
    config = SearchConfig.from_dict(
        {
            "study": {"name": "cuda", "storage": url, "n_trials": 6, "seed": 0},
            "data": {"dataset": "digits"},
            "space": {"layers": [0, 2], "width": [16, 64], "batch_size": [64]},
            "train": {"epochs": 5, "patience": 5, "device": "cuda"},
        }
    )
    study = run_search(config, workers=None, gpus=[0], trials_per_gpu=2, log_dir=tmp_path / "logs")
    finished = [t for t in study.trials if t.state.is_finished() and "device" in t.user_attrs]
    assert len([t for t in finished if t.state.name in ("COMPLETE", "PRUNED")]) == 6
    assert {t.user_attrs["device"] for t in finished} == {"cuda:0"}
    assert len({t.user_attrs["worker"] for t in finished}) == 2

    folder = export_best(url, "cuda", tmp_path / "model")
    model = load_model(folder)
    from archsearch.trainers.data import DataSpec, load_data

    data = load_data(DataSpec(dataset="digits", seed=0))
    predictions = model.predict(data.raw_test)
    accuracy = float(np.mean(predictions == data.preprocessing.decode_labels(data.y_test)))
    assert accuracy == pytest.approx(study.best_trial.user_attrs["test_accuracy"], abs=0.02)
