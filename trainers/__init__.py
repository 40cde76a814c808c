"""archsearch.trainers: data on device, MLP building, the training loop and model export.

This is archsearch's only torch code. Its public names load lazily, so `import archsearch.trainers`
(and `archsearch.trainers.data` or `.metrics`) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archsearch.base import lazy_exports

if TYPE_CHECKING:
    from archsearch.trainers._calibration import Calibration, decision_scores
    from archsearch.trainers._device import release_memory
    from archsearch.trainers._errors import DataError, ExportError
    from archsearch.trainers._export import (
        PROGRAM_FILE,
        Member,
        Predictor,
        ensemble_test_metrics,
        export_ensemble,
        export_model,
        fit_calibration,
        load_model,
        member_weights,
        split_predictions,
    )
    from archsearch.trainers._gpus import cuda_device_count
    from archsearch.trainers._latency import LATENCY_BATCH, Latency, measure_latency
    from archsearch.trainers._model import build_mlp, count_parameters
    from archsearch.trainers._train import train_mlp
    from archsearch.trainers._weights import WeightsError, load_weights, save_weights, weights_mismatch
    from archsearch.trainers.engine import TrainResult, TrainSettings
    from archsearch.trainers.fused import (
        FusedGroup,
        Population,
        SlotSpec,
        fused_unsupported_reason,
        padding_acceptable,
        padding_is_free,
        size_bucket,
        train_fused,
    )

_LAZY_NAMES = {
    "Calibration": "_calibration",
    "decision_scores": "_calibration",
    "PROGRAM_FILE": "_export",
    "fit_calibration": "_export",
    "build_mlp": "_model",
    "count_parameters": "_model",
    "TrainSettings": "engine",
    "TrainResult": "engine",
    "train_mlp": "_train",
    "DataError": "_errors",
    "ExportError": "_errors",
    "Member": "_export",
    "Predictor": "_export",
    "export_model": "_export",
    "export_ensemble": "_export",
    "ensemble_test_metrics": "_export",
    "load_model": "_export",
    "member_weights": "_export",
    "split_predictions": "_export",
    "cuda_device_count": "_gpus",
    "LATENCY_BATCH": "_latency",
    "Latency": "_latency",
    "measure_latency": "_latency",
    "lbfgs_fits": "_lbfgs",
    "FusedGroup": "fused",
    "Population": "fused",
    "SlotSpec": "fused",
    "fused_unsupported_reason": "fused",
    "padding_acceptable": "fused",
    "padding_is_free": "fused",
    "size_bucket": "fused",
    "train_fused": "fused",
    "release_memory": "_device",
    "WeightsError": "_weights",
    "load_weights": "_weights",
    "save_weights": "_weights",
    "weights_mismatch": "_weights",
}

__all__ = [
    "LATENCY_BATCH",
    "Latency",
    "measure_latency",
    "lbfgs_fits",
    "Calibration",
    "DataError",
    "PROGRAM_FILE",
    "ExportError",
    "FusedGroup",
    "Member",
    "Population",
    "Predictor",
    "SlotSpec",
    "TrainResult",
    "TrainSettings",
    "WeightsError",
    "build_mlp",
    "count_parameters",
    "cuda_device_count",
    "decision_scores",
    "ensemble_test_metrics",
    "export_ensemble",
    "export_model",
    "fused_unsupported_reason",
    "load_model",
    "load_weights",
    "member_weights",
    "padding_acceptable",
    "padding_is_free",
    "fit_calibration",
    "release_memory",
    "save_weights",
    "size_bucket",
    "split_predictions",
    "train_fused",
    "train_mlp",
    "weights_mismatch",
]
__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _LAZY_NAMES.items()})
