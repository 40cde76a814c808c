"""Does `archsearch explain` find what the network truly uses? (issue #25)

1. Truth: a synthetic teacher whose label uses k of d columns (numeric and categorical, label noise); a network
   is trained and exported, and `archsearch.explain` runs at its default settings on the held-out test rows.
   Top-k precision of Integrated Gradients and of permutation importance against the k true columns, mean over
   the repetitions with a Clopper-Pearson 95% interval of the true columns found; prototypes (confidence >= 0.9 inside the data's range) and
   counterfactuals (flip found and verified by model.pt2, median changed columns) of the same models.
2. Public tables (wine, breast_cancer, diabetes): an ensemble of seeds of one network; Spearman agreement of
   Integrated Gradients and permutation, and seed-to-seed stability (the rank agreement across the members).
3. Cost: wall time of `explain` on a 10,000-row test split.

Usage: python benchmarks/explain_truth.py --repeats 20 --out explain_truth.json   (about 7 minutes on 2 cores)
       python benchmarks/explain_truth.py --teacher regression --truth-only --out explain_truth_regression.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

import archsearch
from archsearch.explanations._resolve import subject
from archsearch.spaces import NetSpec
from archsearch.trainers import Member, TrainSettings, export_ensemble, export_model, load_model, train_mlp
from archsearch.trainers.data import DataSpec, load_data
from archsearch.trainers.explain import counterfactual_of, load_program

NET = NetSpec((64, 32), (0.0, 0.0), "relu")
D_NUMERIC, D_CATEGORICAL, K = 8, 2, 3
CATEGORIES = ("p", "q", "r", "s")
COUNTERFACTUAL_ROWS = 5
QUIET = {"progress": lambda _: None, "store": False}


def teacher_table(path: Path, rows: int, seed: int, task: str = "binary") -> list[str]:
    """A d-column table whose label uses k random columns (one categorical); returns the true columns. `task`
    "regression": the label is the score plus noise (sd 0.3) itself."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(D_NUMERIC)})
    for i in range(D_CATEGORICAL):
        frame[f"cat{i}"] = rng.choice(CATEGORIES, size=rows)
    relevant = [f"cat{rng.integers(D_CATEGORICAL)}"]
    relevant += [f"x{i}" for i in rng.choice(D_NUMERIC, size=K - 1, replace=False)]
    score = np.zeros(rows)
    for column in relevant:
        if column.startswith("cat"):
            effects = rng.permutation([-1.5, -1.5, 1.5, 1.5])  # never all alike: the column matters
            score += frame[column].map(dict(zip(CATEGORIES, effects))).to_numpy()
        else:
            score += rng.choice([-1.0, 1.0]) * (frame[column] + 0.5 * np.tanh(2 * frame[column])).to_numpy()
    noisy = score + 0.3 * rng.normal(size=rows)
    if task == "regression":
        frame["label"] = noisy
    else:
        label = (noisy > 0).astype(int)
        flip = rng.random(rows) < 0.05  # label noise
        frame["label"] = np.where(flip, 1 - label, label)
    frame.to_csv(path, index=False)
    return relevant


def _train(data, seeds=(0,), epochs=40, metric="accuracy"):
    return [
        Member(
            NET,
            train_mlp(
                NET, data, TrainSettings(batch_size=64, epochs=epochs, lr=2e-3, seed=s, patience=8, metric=metric)
            ).state_dict,
        )
        for s in seeds
    ]


def _top(values: dict, k: int) -> set:
    return set(sorted(values, key=lambda c: -values[c])[:k])


def truth_repetition(scratch: Path, seed: int, task: str = "binary") -> dict:
    metric = "rmse" if task == "regression" else "accuracy"
    relevant = teacher_table(scratch / f"teacher{seed}.csv", 2000, seed, task)
    spec = DataSpec(
        dataset=None,
        path=str(scratch / f"teacher{seed}.csv"),
        target="label",
        seed=seed,
        task=task if task == "regression" else "classification",
    )
    data = load_data(spec)
    (member,) = _train(data, (seed,), metric=metric)
    folder = export_model(
        scratch / f"m{seed}",
        net=NET,
        state_dict=member.state_dict,
        preprocessing=data.preprocessing,
        metadata={"metric": metric},
    )
    found = archsearch.explain(folder, data=data, **QUIET).result
    attributions = found["attributions"]
    target = subject(load_model(folder), data, metric, None, None)
    delta = float(np.std(target.targets)) if task == "regression" else None
    program = load_program(folder)
    counterfactuals = [
        counterfactual_of(
            target.predictor,
            program,
            target.space,
            target.encoded[i],
            list(range(len(target.space.columns))),
            delta=delta,
        )
        for i in range(COUNTERFACTUAL_ROWS)
    ]
    counterfactuals.append(found["counterfactual"])
    return {
        "seed": seed,
        "relevant": relevant,
        "test_metric": attributions["permutation"]["value"],
        "ig_precision": len(_top(attributions["integrated_gradients"]["importance"], K) & set(relevant)) / K,
        "permutation_precision": len(_top(attributions["permutation"]["drop"], K) & set(relevant)) / K,
        "prototypes": [_prototype_check(p, target.targets) for p in found["prototypes"].values()],
        "counterfactuals": [
            {"found": c["found"], "verified": c["verified"], "n_changed": c.get("n_changed")} for c in counterfactuals
        ],
        "seconds": found["seconds"],
    }


def _prototype_check(prototype: dict, targets: np.ndarray) -> dict:
    """A class prototype's confidence; a regression prototype's "confidence" is whether its prediction is within
    0.1 SD of the test targets of the value asked (1.0 or 0.0)."""
    if "confidence" in prototype:
        return {"confidence": prototype["confidence"], "inside": prototype["inside_training_range"]}
    hit = abs(prototype["prediction"] - prototype["target_value"]) <= 0.1 * float(np.std(targets))
    return {"confidence": float(hit), "inside": prototype["inside_training_range"]}


def public_table(name: str, scratch: Path, seeds: int) -> dict:
    data = load_data(DataSpec(dataset=name))
    metric = "accuracy" if data.task == "classification" else "rmse"
    members = _train(data, tuple(range(seeds)), epochs=60, metric=metric)
    folder = export_ensemble(
        scratch / name, members=members, preprocessing=data.preprocessing, metadata={"metric": metric}
    )
    found = archsearch.explain(folder, data=data, prototypes=False, row=None, **QUIET).result["attributions"]
    return {
        "dataset": name,
        "n_test": found["n_rows"],
        "n_columns": len(found["integrated_gradients"]["importance"]),
        "metric": metric,
        "ensemble_metric": found["permutation"]["value"],
        "ig_vs_permutation": found["ig_vs_permutation"]["mean_spearman"],
        "seeds": seeds,
        "seed_stability_ig": found["members"]["integrated_gradients"],
        "seed_stability_permutation": found["members"]["permutation"],
    }


def timing(scratch: Path) -> dict:
    teacher_table(scratch / "big.csv", 20_000, 99)
    data = load_data(
        DataSpec(dataset=None, path=str(scratch / "big.csv"), target="label", val_fraction=0.2, test_fraction=0.5)
    )
    (member,) = _train(data, epochs=5)
    folder = export_model(
        scratch / "big",
        net=NET,
        state_dict=member.state_dict,
        preprocessing=data.preprocessing,
        metadata={"metric": "accuracy"},
    )
    seconds = {}
    for threads in (None, 1):  # torch's own threads (2 here), then one: the machine is shared and loaded
        started = time.perf_counter()
        found = archsearch.explain(folder, data=data, threads=threads, **QUIET).result
        seconds["default threads" if threads is None else f"{threads} thread"] = time.perf_counter() - started
    return {"n_test": found["rows"]["n"], "n_columns": D_NUMERIC + D_CATEGORICAL, "seconds": seconds}


def _precision(reps: list[dict], method: str) -> dict:
    """Mean top-k precision over the repetitions, and the true columns found out of k per repetition with their
    Clopper-Pearson 95% interval (pooled over the repetitions; defined also when every one is found)."""
    hits = int(round(sum(r[f"{method}_precision"] * K for r in reps)))
    interval = binomtest(hits, K * len(reps)).proportion_ci(confidence_level=0.95, method="exact")
    return {
        "mean": float(np.mean([r[f"{method}_precision"] for r in reps])),
        "found": hits,
        "of": K * len(reps),
        "ci95": [float(interval.low), float(interval.high)],
    }


def summary(reps: list[dict]) -> dict:
    prototypes = [p for r in reps for p in r["prototypes"]]
    counterfactuals = [c for r in reps for c in r["counterfactuals"]]
    verified = [c for c in counterfactuals if c["found"] and c["verified"]]
    return {
        "n_repetitions": len(reps),
        "k": K,
        "d": D_NUMERIC + D_CATEGORICAL,
        "mean_test_metric": float(np.mean([r["test_metric"] for r in reps])),
        "ig_precision": _precision(reps, "ig"),
        "permutation_precision": _precision(reps, "permutation"),
        "prototypes": {
            "n": len(prototypes),
            "share_ok": float(np.mean([p["confidence"] >= 0.9 and p["inside"] for p in prototypes])),
            "min_confidence": float(min(p["confidence"] for p in prototypes)),
        },
        "counterfactuals": {
            "n": len(counterfactuals),
            "share_found_verified": len(verified) / len(counterfactuals),
            "median_changed": float(np.median([c["n_changed"] for c in verified])) if verified else None,
        },
        "median_explain_seconds": float(np.median([r["seconds"] for r in reps])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="ensemble members (seeds) on the public tables")
    parser.add_argument("--teacher", choices=("binary", "regression"), default="binary")
    parser.add_argument("--truth-only", action="store_true", help="skip the public tables and the timing")
    parser.add_argument("--out", default="explain_truth.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        reps = []
        for seed in range(args.repeats):
            reps.append(truth_repetition(scratch, seed, args.teacher))
            shown = ("seed", "relevant", "ig_precision", "permutation_precision", "test_metric")
            print(json.dumps({k: reps[-1][k] for k in shown}), flush=True)
        result = {"teacher": args.teacher, "truth": summary(reps), "repetitions": reps}
        if not args.truth_only:
            result["public"] = [
                public_table(name, scratch, args.seeds) for name in ("wine", "breast_cancer", "diabetes")
            ]
            result["timing"] = timing(scratch)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "repetitions"}, indent=2))


if __name__ == "__main__":
    main()
