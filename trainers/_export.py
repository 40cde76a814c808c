"""Write a trained MLP to a folder, and load it back for prediction.

A model folder holds three files:

- `architecture.json`: the architecture, the preprocessing (`Preprocessing.to_dict()`) and metadata.
- `model.pt`: the MLP's state dict (`torch.save`), read back by `load_model` with `weights_only=True`.
- `model.pt2`: a `torch.export` program that needs only torch to run. Its input is the *encoded* but
  unscaled feature matrix (`Preprocessing.encode(rows)`, float32, any number of rows); the input scaling
  (standard, robust or quantile) and any numeric-feature embedding are built in. Its output is the logits
  (classification) or the prediction in the target's original units (regression).

A study searched with a program encoder (`[data] encoder = "backbone.pt2"`) also ships `encoder.pt2` (or
`encoder.pt` for TorchScript) and `pipeline.pt2` (`pipeline.pt`): raw inputs in, model.pt2's output out
(`_bundle.py`); `architecture.json`'s `encoder` entry names those files and `Predictor.predict_raw` uses them.

`architecture.json` names the embedding (`embedding`, `embedding_dim`); a file without them (written before
embeddings existed) describes a network without one.
An ensemble folder (`export_ensemble`) has `"kind": "ensemble"` and a `members` list instead of one
architecture; `model.pt` holds every member's weights (keys `<i>.<name>`), and `model.pt2` outputs the
log of the members' weighted mean class probabilities (so softmax and argmax read it like logits), or the
weighted mean of their predictions for regression; each member's `weight` is in `architecture.json`
(folders written before weights existed have none and mean equal weights).

Networks trained with class weights (`class_weight = "balanced"`, e.g. for balanced accuracy) ship with a
`calibration` entry in `architecture.json` (`archsearch.trainers._calibration`, made by `fit_calibration`):
model.pt2 adds its `log_offsets` and each network's `biases` to that network's logits, before any ensemble
mean, so that its softmax, like `predict_proba`, gives probabilities of the data's class frequencies;
`predict` takes the argmax of the output less the offsets, the class-weighted decision of balanced accuracy.
Without the entry (older folders, unweighted training) the output is the network's own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archsearch.trainers._bundle import bundle_encoder, bundled_files
from archsearch.trainers._calibration import (
    Calibration,
    check_networks,
    class_weight_offsets,
    decision_scores,
    fit_biases,
)
from archsearch.trainers._embedding import DEFAULT_DIM
from archsearch.trainers._encoder import load_program, run_program
from archsearch.trainers._errors import DataError, ExportError
from archsearch.trainers._model import build_mlp
from archsearch.trainers._scaling import InputScaling
from archsearch.trainers._select import build_input, with_head
from archsearch.trainers._weights import torch_load_reason
from archsearch.trainers.data import PreparedData, Preprocessing
from archsearch.trainers.metrics import classification_metrics, regression_metrics
from archsearch.trainers.names import Net

FORMAT_VERSION = 1
ARCHITECTURE_FILE = "architecture.json"
STATE_FILE = "model.pt"
PROGRAM_FILE = "model.pt2"
_REQUIRED_KEYS = ("format_version", "widths", "dropouts", "activation", "n_inputs", "n_outputs", "preprocessing")
_ENSEMBLE_KEYS = ("format_version", "kind", "members", "n_inputs", "n_outputs", "preprocessing")
_MEMBER_KEYS = ("widths", "dropouts", "activation")
_PREDICT_BATCH_SIZE = 8192


@dataclass(frozen=True)
class Member:
    """One network an export ships: its architecture, its trained weights and its share of an ensemble.

    Attributes:
        net: The architecture the weights were trained with (`archsearch.spaces.NetSpec`).
        state_dict: The network's weights, trained on inputs scaled by the export's preprocessing.
        weight: Its weight in an ensemble (> 0, normalized over the members); None on every member: equal weights.
        record: JSON-safe facts kept with the member in `architecture.json` (trial, seed, ...).
    """

    net: Net
    state_dict: Mapping[str, torch.Tensor]
    weight: float | None = None
    record: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def described(self) -> dict[str, Any]:
        """What `architecture.json` says of the member: its record, then its architecture in full."""
        return {**self.record, **_net_dict(self.net)}


def _net_dict(net: Net) -> dict[str, Any]:
    """The architecture keys of `architecture.json`, every one written (a reader of old folders defaults them)."""
    return {
        "widths": [int(w) for w in net.widths],
        "dropouts": [float(p) for p in net.dropouts],
        "activation": net.activation,
        "normalization": net.normalization,
        "embedding": net.embedding,
        "embedding_dim": int(net.embedding_dim),
        **({"blocks": list(net.blocks)} if getattr(net, "blocks", ()) else {}),
        **({"head": net.head} if getattr(net, "head", "softmax") != "softmax" else {}),
    }


class _DeployedMLP(nn.Module):
    """Encoded rows in; logits (calibrated, with a calibration), or predictions in the target's units, out."""

    def __init__(
        self, mlp: nn.Module, preprocessing: Preprocessing, calibration: Calibration | None = None, member: int = 0
    ) -> None:
        super().__init__()
        self.mlp = mlp
        self.scaling = InputScaling(preprocessing)
        self.regression = preprocessing.task == "regression"
        self.target_mean = float(preprocessing.target_mean)
        self.target_scale = float(preprocessing.target_scale)
        self.target_range = preprocessing.target_range  # None: no clamp (old exports)
        self.calibrated = calibration is not None
        if calibration is not None:
            # The network's offsets plus biases: logits of the data's class frequencies (see the module docstring).
            self.register_buffer("shifts", torch.tensor(calibration.shifts(member), dtype=torch.float32))

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        out = self.mlp(self.scaling(encoded))  # (batch, n_outputs)
        if self.calibrated:
            return out + self.shifts
        if not self.regression:
            return out
        return _in_target_units(out, self.target_mean, self.target_scale, self.target_range)


def _in_target_units(
    out: torch.Tensor, mean: float, scale: float, target_range: tuple[float, float] | None
) -> torch.Tensor:
    """A regression network's output (batch, 1) as predictions (batch,) in the target's units, clamped to
    `target_range` when there is one: what the exported program returns, and what selection judges."""
    predicted = out.squeeze(1) * scale + mean
    return predicted if target_range is None else predicted.clamp(target_range[0], target_range[1])


class _DeployedEnsemble(nn.Module):
    """Encoded rows in; log weighted-mean class probabilities, or the weighted mean prediction, out."""

    def __init__(self, members: Sequence[_DeployedMLP], weights: Sequence[float]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.regression = members[0].regression
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))  # (members,), sum 1

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([member(encoded) for member in self.members])  # (members, batch[, n_classes])
        if self.regression:
            return (outs * self.weights[:, None]).sum(dim=0)  # (batch,)
        # log(sum_i w_i softmax_i) without leaving log space, so a confident member cannot underflow to log(0).
        log_weights = torch.log(self.weights)[:, None, None]
        return torch.logsumexp(torch.log_softmax(outs, dim=2) + log_weights, dim=0)


def export_model(
    out_dir: str | Path,
    *,
    net: Net,
    state_dict: Mapping[str, torch.Tensor],
    preprocessing: Preprocessing,
    metadata: dict[str, Any],
    calibration: Calibration | None = None,
    encoder: str | Path | None = None,
) -> Path:
    """Write `architecture.json`, `model.pt` and `model.pt2` into `out_dir` (created if needed).

    Args:
        out_dir: The model folder.
        net: The architecture the weights were trained with (`archsearch.spaces.NetSpec`); its dropouts are
            kept for the record (dropout is off in the exported program).
        state_dict: The MLP's weights, e.g. `TrainResult.state_dict`.
        preprocessing: The data's preprocessing, baked into the exported program.
        metadata: JSON-serializable facts to keep with the model (metric values, trial number, study
            name, archsearch version, ...), stored under the key "metadata".
        calibration: For a network trained with class weights, the correction of its probabilities to the
            data's class frequencies (`fit_calibration`); None ships its output as it is.
        encoder: A torch.export (.pt2) or TorchScript (.pt, .ts) program that made the inputs from raw rows
            (`[data] encoder`): bundled as `encoder.pt2`/`.pt` beside a pipeline program from raw inputs
            (`_bundle.py`).

    Returns:
        The model folder.

    Example:
        >>> export_model("best", net=NetSpec((64,), (0.0,), "relu"),  # doctest: +SKIP
        ...              state_dict=result.state_dict, preprocessing=data.preprocessing,
        ...              metadata={"val_accuracy": 0.97, "trial": 12})
        PosixPath('best')
    """
    architecture = _described_folder(preprocessing, metadata, calibration, 1, **_net_dict(net))
    mlp = _build(architecture, preprocessing)
    mlp.load_state_dict(state_dict)
    # eval: dropout and batch statistics must not reach the program
    deployed = _DeployedMLP(mlp, preprocessing, calibration).eval()
    return _write_folder(Path(out_dir), architecture, mlp.state_dict(), deployed, encoder)


def export_ensemble(
    out_dir: str | Path,
    *,
    members: Sequence[Member],
    preprocessing: Preprocessing,
    metadata: dict[str, Any],
    calibration: Calibration | None = None,
    encoder: str | Path | None = None,
) -> Path:
    """Write an ensemble folder: one program whose output is the weighted mean of its members' predictions.

    Args:
        out_dir: The model folder.
        members: The networks, all trained on inputs scaled by `preprocessing`; their weights are normalized
            to sum 1 (equal when none has one) and written with their records to `architecture.json`.
        preprocessing: The preprocessing every member was trained with, baked into the program once.
        metadata: JSON-serializable facts to keep with the model, stored under the key "metadata".
        calibration: For members trained with class weights, the correction of each member's probabilities
            before their weighted mean (`predict` then decides by that mean less the offsets, as greedy
            selection scored it); None ships the members' outputs as they are.
        encoder: A program encoder to bundle, as for `export_model`.

    Returns:
        The model folder.

    Example:
        >>> export_ensemble("best", members=[Member(net_a, a.state_dict), Member(net_b, b.state_dict)],  # doctest: +SKIP
        ...                 preprocessing=data.preprocessing, metadata={})
        PosixPath('best')
    """
    if len(members) < 1:
        raise ExportError(
            f"The 'members' parameter of export_ensemble must hold at least one member. Got {len(members)} instead."
        )
    weights = member_weights(members)
    described = [member.described() | {"weight": weight} for member, weight in zip(members, weights)]
    architecture = _described_folder(
        preprocessing, metadata, calibration, len(members), kind="ensemble", members=described
    )
    mlps = _loaded_members(members, preprocessing)
    # Each member calibrated before the mean: a mixture of probabilities, not of class-weighted posteriors.
    calibrated = [_DeployedMLP(mlp, preprocessing, calibration, i) for i, mlp in enumerate(mlps)]
    deployed = _DeployedEnsemble(calibrated, weights).eval()
    return _write_folder(Path(out_dir), architecture, nn.ModuleList(mlps).state_dict(), deployed, encoder)


def _described_folder(
    preprocessing: Preprocessing,
    metadata: dict[str, Any],
    calibration: Calibration | None,
    n_networks: int,
    **network: Any,
) -> dict[str, Any]:
    """`architecture.json`'s content: the network (one, or an ensemble's members), its inputs and outputs, the
    preprocessing and any calibration the program bakes in, and the caller's metadata."""
    n_outputs = 1 if preprocessing.classes is None else len(preprocessing.classes)
    if calibration is not None:
        check_networks(calibration, n_networks, n_outputs)
    if network.get("blocks"):
        # Which input features the network reads; the program still takes the full vector.
        network["input_features"] = [
            preprocessing.encoded_names[j] for j in preprocessing.block_indices(network["blocks"])
        ]
    for member in network.get("members", []):
        if member.get("blocks"):
            member["input_features"] = [
                preprocessing.encoded_names[j] for j in preprocessing.block_indices(member["blocks"])
            ]
    return {
        "format_version": FORMAT_VERSION,
        **network,
        "n_inputs": len(preprocessing.mean),
        "n_outputs": n_outputs,
        "task": preprocessing.task,
        "torch_version": torch.__version__,
        "preprocessing": preprocessing.to_dict(),
        "metadata": metadata,
        **({} if calibration is None else {"calibration": calibration.to_dict()}),
    }


def ensemble_test_metrics(
    members: Sequence[Member], data: PreparedData, calibration: Calibration | None = None
) -> dict[str, float]:
    """Every metric of the task on `data`'s test split for the mean prediction of `members` (one member: itself).

    The members are those `export_ensemble` takes, trained on inputs standardized by `data.preprocessing`;
    the prediction is the one the exported program makes from the test split's raw rows, with `calibration`
    as it ships: accuracy and balanced accuracy from `predict`'s decision, log loss from `predict_proba`.

    Example:
        >>> ensemble_test_metrics(members, data)["test_accuracy"]  # doctest: +SKIP
        0.975
    """
    preprocessing = data.preprocessing
    mlps = _loaded_members(members, preprocessing)
    deployed = _DeployedEnsemble(
        [_DeployedMLP(mlp, preprocessing, calibration, i) for i, mlp in enumerate(mlps)], member_weights(members)
    )
    predictor = Predictor({}, preprocessing, deployed, calibration)
    if preprocessing.classes is None:
        y_test = np.asarray(data.y_test, dtype=np.float64) * preprocessing.target_scale + preprocessing.target_mean
        values = regression_metrics(y_test, predictor.predict(data.raw_test))
    else:
        outputs = predictor._forward(data.raw_test)  # (n, n_classes)
        values = classification_metrics(data.y_test, _softmax(outputs))
        # Decisions are predict's: with a calibration, the class-weighted argmax, not that of the probabilities.
        decided = classification_metrics(data.y_test, _softmax(decision_scores(outputs, calibration)))
        values |= {name: decided[name] for name in ("accuracy", "balanced_accuracy")}
    return {f"test_{name}": value for name, value in values.items()}


def _softmax(outputs: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(outputs).double(), dim=1).numpy()


def split_predictions(
    members: Sequence[Member], data: PreparedData, split: str = "val", calibration: Calibration | None = None
) -> list[np.ndarray]:
    """Each member's prediction on one of `data`'s splits, as `ensemble_test_metrics` combines them.

    The members are those `export_ensemble` takes, trained on inputs scaled by `data.preprocessing`.

    Returns:
        Per member, class probabilities of shape (n, n_classes), corrected by `calibration` as the exported
        members are, or predictions in the target's units of shape (n,).
    """
    x = torch.from_numpy(np.ascontiguousarray(getattr(data, f"x_{split}"), dtype=np.float32))
    preprocessing = data.preprocessing
    predictions = []
    for index, mlp in enumerate(_loaded_members(members, preprocessing)):
        with torch.inference_mode():
            out = torch.cat([mlp.eval()(chunk) for chunk in torch.split(x, _PREDICT_BATCH_SIZE)])
        if calibration is not None:
            out = out.double() + torch.from_numpy(calibration.shifts(index))
        if preprocessing.classes is None:
            predicted = _in_target_units(
                out.double(), preprocessing.target_mean, preprocessing.target_scale, preprocessing.target_range
            )
            predictions.append(predicted.numpy())
        else:
            predictions.append(torch.softmax(out.double(), dim=1).numpy())
    return predictions


def fit_calibration(members: Sequence[Member], data: PreparedData) -> Calibration:
    """The calibration of class-weighted (balanced) classifiers: the prior correction of `data`'s training rows,
    then each member's biases fitted on those rows (never the validation or test rows it is judged on).

    The members are those `export_ensemble` takes, trained on inputs scaled by `data.preprocessing`.
    """
    offsets = class_weight_offsets(data.y_train, data.n_outputs)
    x = torch.from_numpy(np.ascontiguousarray(data.x_train, dtype=np.float32))
    biases = []
    for mlp in _loaded_members(members, data.preprocessing):
        with torch.inference_mode():
            out = torch.cat([mlp.eval()(chunk) for chunk in torch.split(x, _PREDICT_BATCH_SIZE)])
        biases.append(fit_biases(out.double().numpy() + np.asarray(offsets), data.y_train))
    counts = np.bincount(data.y_train, minlength=data.n_outputs)
    return Calibration("balanced", tuple(int(c) for c in counts), offsets, tuple(biases))


def member_weights(members: Sequence[Member | Mapping[str, Any]]) -> list[float]:
    """The members' `weight`s normalized to sum 1; equal weights when no member has one.

    Args:
        members: `Member`s, or the member entries of an ensemble's `architecture.json`.

    Raises:
        ExportError: Some members have a weight and others not, or a weight is not a finite number > 0.
    """
    given = [member.weight if isinstance(member, Member) else member.get("weight") for member in members]
    if all(weight is None for weight in given):
        return [1.0 / len(members)] * len(members)
    for index, weight in enumerate(given):
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight) or weight <= 0:
            raise ExportError(
                f"The 'weight' of ensemble member {index} must be a finite number > 0, on every member or on none. "
                f"Got {weight!r} instead."
            )
    total = float(sum(given))
    return [float(weight) / total for weight in given]


def _loaded_members(members: Sequence[Member], preprocessing: Preprocessing) -> list[nn.Module]:
    n_outputs = 1 if preprocessing.classes is None else len(preprocessing.classes)
    described = [_net_dict(member.net) for member in members]
    mlps = _build_members(described, len(preprocessing.mean), n_outputs, preprocessing)
    for mlp, member in zip(mlps, members):
        mlp.load_state_dict(member.state_dict)
    return mlps


def _build_members(
    members: Sequence[Mapping[str, Any]], n_inputs: int, n_outputs: int, preprocessing: Preprocessing
) -> list[nn.Module]:
    """Each member's untrained network; a member without `normalization` or `embedding` keys has none."""
    return [_build({**member, "n_inputs": n_inputs, "n_outputs": n_outputs}, preprocessing) for member in members]


def _architecture_json(architecture: dict[str, Any]) -> str:
    """`architecture.json`'s text; metadata that JSON cannot hold is the caller's error, said as such."""
    try:
        return json.dumps(architecture, indent=2, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ExportError(f"The model's metadata must be JSON-serializable with finite numbers: {e}") from e


def _write_folder(
    folder: Path,
    architecture: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    deployed: nn.Module,
    encoder: str | Path | None = None,
) -> Path:
    """Write model.pt, model.pt2, any bundled encoder and, last, architecture.json (checked first: nothing is
    written for bad metadata)."""
    if encoder is not None:
        architecture = {**architecture, "encoder": bundled_files(encoder)}
    architecture_text = _architecture_json(architecture)
    folder.mkdir(parents=True, exist_ok=True)
    # An earlier export's architecture.json must not vouch for half-written new files if this one fails.
    (folder / ARCHITECTURE_FILE).unlink(missing_ok=True)
    torch.save(state_dict, folder / STATE_FILE)
    # Two example rows: a batch of 1 would make torch.export specialize the batch size to 1.
    example = torch.zeros(2, architecture["n_inputs"])
    program = torch.export.export(deployed, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    torch.export.save(program, folder / PROGRAM_FILE)
    if encoder is not None:
        bundle_encoder(folder, encoder, deployed, architecture["n_inputs"])
    # Written last, so a folder with an architecture.json is complete.
    (folder / ARCHITECTURE_FILE).write_text(architecture_text + "\n", encoding="utf-8")
    return folder


class Predictor:
    """A model loaded by `load_model`, predicting on CPU from raw rows.

    Attributes:
        architecture: The parsed `architecture.json`.
        preprocessing: The preprocessing that turns raw rows into the model's input.
        classes: Original labels in class-index order, or None for regression.
        calibration: The class-weight correction `module` applies (its output less the offsets is what
            `predict` decides by); None when it applies none.
        encoder: The program encoder the folder bundles (`encode`, `predict_raw`); None when it bundles none:
            then a study searched with `[data] encoder` predicts from that encoder's vectors.
    """

    def __init__(
        self,
        architecture: dict[str, Any],
        preprocessing: Preprocessing,
        module: nn.Module,
        calibration: Calibration | None = None,
        encoder: nn.Module | None = None,
    ) -> None:
        self.architecture = architecture
        self.preprocessing = preprocessing
        self.classes = preprocessing.classes
        self.calibration = calibration
        self.encoder = encoder
        self._module = module.eval()

    def encode(self, raw: Any) -> np.ndarray:
        """The bundled encoder's vectors of raw inputs (an array, or a DataFrame of numbers): what `predict` reads."""
        if self.encoder is None:
            raise ValueError("This model bundles no encoder: predict takes the vectors it was searched on.")
        return np.concatenate(
            [
                run_program(self.encoder, raw[i : i + _PREDICT_BATCH_SIZE])
                for i in range(0, len(raw), _PREDICT_BATCH_SIZE)
            ]
        )

    def predict_raw(self, raw: Any) -> np.ndarray:
        """`predict` of raw inputs: the bundled encoder, then the network."""
        return self.predict(self.encode(raw))

    def predict_proba_raw(self, raw: Any) -> np.ndarray:
        """`predict_proba` of raw inputs: the bundled encoder, then the network."""
        return self.predict_proba(self.encode(raw))

    def predict(self, rows: Any) -> np.ndarray:
        """Original labels (classification) or values in the target's units (regression), shape (n,).

        Args:
            rows: A DataFrame with the original input columns, or a 2-D array in their order.
        """
        out = self._forward(rows)
        if self.classes is None:
            return out
        return self.preprocessing.decode_labels(decision_scores(out, self.calibration).argmax(axis=1))

    def predict_proba(self, rows: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of `classes`; for the data's class
        frequencies also when the network trained with class weights (see `calibration`)."""
        if self.classes is None:
            raise ValueError("predict_proba applies to classification models; this is a regression model, use predict.")
        logits = torch.from_numpy(self._forward(rows))  # (n, n_classes)
        return torch.softmax(logits, dim=1).numpy()

    def _forward(self, rows: Any) -> np.ndarray:
        encoded = torch.from_numpy(np.ascontiguousarray(self.preprocessing.encode(rows), dtype=np.float32))
        with torch.inference_mode():
            out = [self._module(chunk) for chunk in torch.split(encoded, _PREDICT_BATCH_SIZE)]
        return torch.cat(out).numpy()


def load_model(path: str | Path) -> Predictor:
    """Load a folder written by `export_model`.

    Args:
        path: The model folder.

    Raises:
        ExportError: The folder or one of its files is missing, or the files do not describe one model.

    Example:
        >>> predictor = load_model("best")  # doctest: +SKIP
        >>> predictor.predict(pd.read_csv("new_rows.csv"))  # doctest: +SKIP
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ExportError(f"No model folder at '{folder}'; export_model writes one.")
    for name in (ARCHITECTURE_FILE, STATE_FILE):
        if not (folder / name).is_file():
            raise ExportError(
                f"'{folder / name}' is missing; a model folder holds {ARCHITECTURE_FILE}, {STATE_FILE} "
                f"and {PROGRAM_FILE} as written by export_model."
            )
    architecture_path = folder / ARCHITECTURE_FILE
    try:
        architecture = json.loads(architecture_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExportError(f"'{architecture_path}' is not valid JSON: {e}") from e
    if not isinstance(architecture, dict):
        raise ExportError(f"'{architecture_path}' must hold a JSON object. Got {type(architecture).__name__} instead.")
    if architecture.get("kind") == "ensemble":
        return _load_ensemble(folder, architecture)
    _check_header(architecture_path, architecture, _REQUIRED_KEYS)
    try:
        preprocessing = Preprocessing.from_dict(architecture["preprocessing"])
        mlp = _build(architecture, preprocessing)
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"'{architecture_path}' does not describe a valid model: {e}") from e
    try:
        mlp.load_state_dict(torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True))
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise ExportError(
            f"'{folder / STATE_FILE}' does not hold the weights {ARCHITECTURE_FILE} describes: {_load_error(e)}"
        ) from e
    return _predictor(architecture_path, architecture, preprocessing, [mlp])


def _predictor(
    path: Path, architecture: dict[str, Any], preprocessing: Preprocessing, mlps: Sequence[nn.Module]
) -> Predictor:
    """The Predictor of loaded networks (one, or an ensemble's members), with the calibration
    `architecture.json` records, if any."""
    try:
        stored = architecture.get("calibration")
        calibration = None if stored is None else Calibration.from_dict(stored)
        if calibration is not None:
            check_networks(calibration, len(mlps), architecture["n_outputs"])
        members = [_DeployedMLP(mlp, preprocessing, calibration, i) for i, mlp in enumerate(mlps)]
        encoder = _bundled_encoder(path.parent, architecture)
        if architecture.get("kind") != "ensemble":
            return Predictor(architecture, preprocessing, members[0], calibration, encoder)
        deployed = _DeployedEnsemble(members, member_weights(architecture["members"]))
    except ExportError as e:
        raise ExportError(f"'{path}' does not describe a valid model: {e}") from e
    return Predictor(architecture, preprocessing, deployed, calibration, encoder)


def _bundled_encoder(folder: Path, architecture: dict[str, Any]) -> nn.Module | None:
    """The program encoder the folder bundles, or None (folders written before bundling, function encoders)."""
    if "encoder" not in architecture:
        return None
    try:
        return load_program(folder / architecture["encoder"]["file"])
    except (DataError, KeyError, TypeError) as e:
        raise ExportError(f"its bundled encoder does not load: {e}") from e


def _build(architecture: dict[str, Any], preprocessing: Preprocessing) -> nn.Sequential:
    """The untrained network `architecture` describes, ready for its state dict (which carries the bin edges)."""
    n_inputs = architecture["n_inputs"]
    embedding = build_input(
        architecture.get("embedding", "none"),
        architecture.get("embedding_dim", DEFAULT_DIM),
        architecture.get("blocks", []),  # folders written before blocks existed read every input
        preprocessing,
    )
    mlp = build_mlp(
        n_inputs,
        architecture["widths"],
        architecture["dropouts"],
        architecture["activation"],
        architecture["n_outputs"],
        embedding=embedding,
        # Folders written before normalization existed lack the key; their networks had none.
        normalization=architecture.get("normalization", "none"),
    )
    return with_head(mlp, architecture.get("head", "softmax"))


def _load_error(error: BaseException) -> str:
    """torch's reason a model.pt did not load (a state dict's shape errors in full), never its advice to load the
    file with weights_only=False, which would run code from it."""
    return torch_load_reason(error) if isinstance(error, pickle.UnpicklingError) else str(error)


def _check_header(path: Path, architecture: dict[str, Any], required: Sequence[str]) -> None:
    """Refuse an architecture.json that lacks a required key or was written in another format version."""
    missing = [key for key in required if key not in architecture]
    if missing:
        raise ExportError(f"'{path}' lacks the keys {missing}.")
    if architecture["format_version"] != FORMAT_VERSION:
        raise ExportError(
            f"'{path}' has format_version {architecture['format_version']!r}; this archsearch "
            f"reads version {FORMAT_VERSION}."
        )


def _load_ensemble(folder: Path, architecture: dict[str, Any]) -> Predictor:
    """The `load_model` of a folder written by `export_ensemble`."""
    architecture_path = folder / ARCHITECTURE_FILE
    _check_header(architecture_path, architecture, _ENSEMBLE_KEYS)
    try:
        preprocessing = Preprocessing.from_dict(architecture["preprocessing"])
        members = architecture["members"]
        if not members or any(key not in member for member in members for key in _MEMBER_KEYS):
            raise ValueError(f"every one of its members needs the keys {list(_MEMBER_KEYS)}")
        mlps = _build_members(members, architecture["n_inputs"], architecture["n_outputs"], preprocessing)
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"'{architecture_path}' does not describe a valid ensemble: {e}") from e
    try:
        nn.ModuleList(mlps).load_state_dict(torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True))
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise ExportError(
            f"'{folder / STATE_FILE}' does not hold the weights {ARCHITECTURE_FILE} describes: {_load_error(e)}"
        ) from e
    try:
        member_weights(members)
    except ExportError as e:
        raise ExportError(f"'{architecture_path}' does not describe a valid ensemble: {e}") from e
    return _predictor(architecture_path, architecture, preprocessing, mlps)
