"""`archsearch.explain`: attributions, prototypes and a counterfactual of an exported model, as one JSON result."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.explanations._resolve import (
    ExplainError,
    Subject,
    class_index,
    column_indices,
    model_folder,
    open_archsearch_study,
    study_data,
    subject,
)
from archsearch.storage import keys
from archsearch.trainers import DataError
from archsearch.trainers.data import PreparedData

__all__ = ["Explanation", "explain"]

_TOP = 5


@dataclass(frozen=True)
class Explanation:
    """What `explain` found, as the JSON it writes (`result`), with one-line summaries."""

    result: dict[str, Any]

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return path

    def summary_lines(self) -> list[str]:
        """One line per finding: the top columns by each method, stability, prototypes and the counterfactual."""
        r = self.result
        n = r["attributions"]["n_rows"]
        ig = r["attributions"]["integrated_gradients"]["importance"]
        drop = r["attributions"]["permutation"]["drop"]
        metric = r["attributions"]["permutation"]["metric"]
        lines = [
            f"Integrated Gradients, top columns (mean |attribution|, n = {n} test rows): " + _top(ig),
            f"Permutation, top columns (drop of {metric}, n = {n} test rows): " + _top(drop),
        ]
        agreement = r["attributions"]["ig_vs_permutation"]["mean_spearman"]
        if agreement is not None:
            lines.append(f"Integrated Gradients vs permutation: Spearman {agreement:.2f} over {len(ig)} columns")
        members = r["attributions"].get("members")
        if members:
            rho = members["integrated_gradients"]["mean_spearman"]
            lines.append(
                f"Stability over the {members['n']} ensemble members: mean Spearman "
                + ("n/a" if rho is None else f"{rho:.2f}")
                + f" ({members['integrated_gradients']['n_pairs']} pairs)"
            )
        for name, found in r.get("prototypes", {}).items():
            shown = (
                f"confidence {found['confidence']:.3f}"
                if "confidence" in found
                else f"prediction {found['prediction']:.4g}"
            )
            nearest = found["nearest_training_row"]
            lines.append(
                f"Prototype {name}: {shown}, inside the training range: {found['inside_training_range']}, "
                f"nearest training row {nearest['index']}"
                + (f" (class {nearest['label']})" if "label" in nearest else "")
                + f" at {nearest['distance_sd']:.2f} sd"
            )
        cf = r.get("counterfactual")
        if cf is not None:
            lines.append(_counterfactual_line(cf))
        return lines


def _top(values: Mapping[str, float]) -> str:
    ranked = sorted(values.items(), key=lambda item: -item[1])[:_TOP]
    return ", ".join(f"{column} {value:.3g}" for column, value in ranked)


def _counterfactual_line(cf: Mapping[str, Any]) -> str:
    where = f"Counterfactual for test row {cf['row_index']}" if "row_index" in cf else "Counterfactual for the row"
    if not cf["found"]:
        return f"{where}: none found over the allowed columns"
    changes = "; ".join(f"{column} {c['from']!r} -> {c['to']!r}" for column, c in cf["changes"].items())
    outcome = (
        f"{cf['from_class']} -> {cf['to_class']}"
        if "from_class" in cf
        else f"{cf['prediction']:.4g} -> {cf['goal']:.4g}"
    )
    return f"{where} ({outcome}): {changes}; verified by model.pt2: {cf['verified']}"


def explain(
    model: str | Path | None = None,
    *,
    storage: str | None = None,
    study: str | None = None,
    data: PreparedData | None = None,
    max_rows: int | None = None,
    row: int | Mapping[str, Any] | None = 0,
    allow_change: Sequence[str] | None = None,
    target_class: Any = None,
    delta: float | None = None,
    prototypes: bool = True,
    steps: int | None = None,
    repeats: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    out: str | Path | None = None,
    store: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Explanation:
    """Explain an exported model on the study's held-out test rows.

    Args:
        model: An exported folder; None: the study's best trial, exported with its stored weights (no refit).
        storage, study: Where the study is: its config says which data to read (`study` defaults to the one
            the folder names); the explanation is stored there as the study attribute `keys.EXPLANATION`.
        data: The data (e.g. `load_data(...)`), instead of reading the study's.
        max_rows: Explain on the first this many test rows (default: all).
        row: The counterfactual's row: a test row's index, or {column: value} in user units; None: none.
        allow_change: The columns the counterfactual may change (default: all).
        target_class: The class the counterfactual should reach (default: any other than the model's decision).
        delta: Regression: how far the counterfactual should move the prediction (default: one standard
            deviation of the test rows' targets, in the target's units).
        prototypes: Compute a prototype per class (regression: of the 10th and 90th percentile of the targets).
        threads: torch's threads while explaining (default: torch's own; 1 was 2-8x faster on a loaded machine).
        out: A JSON file to write.
        store: Store the result in the study (when `storage` and a study are known).
        progress: Called with a line before each long step (default: printed to stderr).

    Raises:
        ExplainError: An unknown column in `allow_change`, a row outside the data's schema or range, a class
            that does not exist, or no data to explain on.
    """
    from archsearch.trainers import load_model
    from archsearch.trainers.explain import torch_threads

    _check_counts(max_rows=max_rows, threads=threads, steps=steps, repeats=repeats)
    say = progress or (lambda line: print(f"archsearch explain: {line}", file=sys.stderr))
    started = time.perf_counter()
    with model_folder(model, storage, study) as folder, torch_threads(threads):
        predictor = load_model(folder)
        metadata = predictor.architecture.get("metadata", {})
        study = study or metadata.get("study")
        metric = metadata.get("metric") or ("rmse" if predictor.classes is None else "accuracy")
        data = data if data is not None else study_data(storage, study)
        target = subject(predictor, data, metric, study, max_rows)
        allowed = column_indices(target.space.columns, allow_change)
        wanted = class_index(predictor.classes, target_class)
        result: dict[str, Any] = {
            "model": _model_record(model, study, metadata, predictor.architecture, metric),
            "rows": {"split": "test", "n": len(target.encoded)},
        }
        result.update(
            _analyses(
                target, predictor, folder, metric, say, steps, repeats, seed, prototypes, row, allowed, wanted, delta
            )
        )
    result["seconds"] = round(time.perf_counter() - started, 3)
    explanation = Explanation(result)
    if out is not None:
        explanation.write_json(out)
    if store and storage is not None and study is not None:
        from archsearch.storage import set_study_user_attrs

        set_study_user_attrs(open_archsearch_study(storage, study), {keys.EXPLANATION: result})
    return explanation


def _analyses(
    target: Any,
    predictor: Any,
    folder: Path,
    metric: str,
    say: Callable[[str], None],
    steps: int | None,
    repeats: int | None,
    seed: int,
    prototypes: bool,
    row: int | Mapping[str, Any] | None,
    allowed: Any,
    wanted: Any,
    delta: float | None,
) -> dict[str, Any]:
    """The attributions, then the prototypes and the counterfactual when asked for."""
    from archsearch.trainers.explain import IG_STEPS, PERMUTATION_REPEATS, attributions, load_program

    out: dict[str, Any] = {}
    out["attributions"] = attributions(
        predictor,
        target.space,
        target.encoded,
        target.targets,
        metric,
        steps=steps or IG_STEPS,
        repeats=repeats or PERMUTATION_REPEATS,
        seed=seed,
        progress=say,
    )
    if prototypes:
        say("prototypes")
        out["prototypes"] = _prototypes(target)
    if row is not None:
        say("counterfactual")
        out["counterfactual"] = _counterfactual(target, load_program(folder), row, allowed, wanted, delta)
    return out


def _model_record(
    model: str | Path | None,
    study: str | None,
    metadata: Mapping[str, Any],
    architecture: Mapping[str, Any],
    metric: str,
) -> dict[str, Any]:
    """Which model was explained: its folder (None: the study's best trial), study, trial, kind and metric."""
    return {
        "folder": str(model) if model is not None else None,
        "study": study,
        "trial": metadata.get("trial"),
        "kind": architecture.get("kind", "network"),
        "metric": metric,
    }


def _check_counts(**counts: int | None) -> None:
    """Refuse counts below their least useful value (permutation needs two rows to shuffle)."""
    least = {"max_rows": 2, "threads": 1, "steps": 2, "repeats": 1}
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least[name]):
            option = "--" + name.replace("_", "-")
            raise ExplainError(f"{option} must be an int >= {least[name]}. Got {value!r} instead.")


def _prototypes(target: Subject) -> dict[str, Any]:
    from archsearch.trainers.explain import prototype_of

    classes = target.predictor.classes
    if classes is not None:
        found = {
            str(label): prototype_of(target.predictor, target.space, target_class=k) for k, label in enumerate(classes)
        }
        for prototype in found.values():  # the nearest row's class by its label, as the user knows it
            nearest = prototype["nearest_training_row"]
            nearest["label"] = str(classes[nearest["label_index"]])
        return found
    found = {}
    for q in (10, 90):
        value = float(np.percentile(target.targets, q))
        found[f"p{q} {value:.4g}"] = prototype_of(target.predictor, target.space, target_value=value)
    return found


def _counterfactual(
    target: Subject,
    program: Any,
    row: int | Mapping[str, Any],
    allowed: list[int],
    wanted: int | None,
    delta: float | None,
) -> dict[str, Any]:
    from archsearch.trainers.explain import counterfactual_of

    where: dict[str, Any] = {}
    if isinstance(row, Mapping):
        try:
            encoded = target.space.encode_row(row)
        except DataError as e:
            raise ExplainError(str(e)) from e
    else:
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < len(target.encoded):
            raise ExplainError(
                f"--row must be a test row's index in [0, {len(target.encoded) - 1}] or a JSON object of the row. Got {row!r} instead."
            )
        encoded, where = target.encoded[int(row)], {"row_index": int(row)}
    if delta is None and target.predictor.classes is None:
        delta = float(np.std(target.targets))
    found = counterfactual_of(
        target.predictor, program, target.space, encoded, allowed, target_class=wanted, delta=delta
    )
    found.pop("encoded", None)
    return where | {"allowed": [target.space.columns[c] for c in allowed]} | found
