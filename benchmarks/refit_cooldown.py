"""Refit of a constant-learning-rate network: does a linear cool-down of the lr over the refit's last steps help?

For each table and seed: a search of the linear model and the recipe baseline with a constant learning rate
(3 x 256 ReLU, batch norm, AdamW at 1e-3, batch 128), then the exported winner refit on train + validation
rows three ways: no refit (the weights the search stored), refit at a constant lr, refit with the lr falling
linearly to 0 over the last `--cooldown` of its steps. Each is scored on the benchmark's held-out test rows
(the splits of quality_vs_peers.py). Results: one JSON line per (table, seed) on stdout and in --out.

    python benchmarks/refit_cooldown.py --datasets diamonds,computers --seeds 0,1,2,3 --out results/refit_cooldown.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import _git_commit
from _peers_data import DATASETS, load, split

import archsearch
import archsearch.export._refit as refit_module

SPACE = {
    "layers": [0, 3],
    "lr_schedule": ["constant"],  # the recipe baseline moves to the nearest allowed value: constant
    "recipe_baseline": True,
}


def _score(metric: str, y_true: pd.Series, predicted: np.ndarray) -> float:
    if metric == "accuracy":
        return float(np.mean(np.asarray(y_true).astype(str) == np.asarray(predicted).astype(str)))
    return float(np.sqrt(np.mean((np.asarray(y_true, dtype=float) - np.asarray(predicted, dtype=float)) ** 2)))


def run(dataset: str, seed: int, cooldown: float) -> dict:
    spec = DATASETS[dataset]
    frame, target, _ = load(dataset)
    train, test = split(target, spec.task, seed)
    x_train, y_train = frame.iloc[train].reset_index(drop=True), target.iloc[train].reset_index(drop=True)
    x_test, y_test = frame.iloc[test].reset_index(drop=True), target.iloc[test].reset_index(drop=True)
    metric = "accuracy" if spec.task == "classification" else "rmse"
    record = {
        "dataset": dataset,
        "seed": seed,
        "metric": metric,
        "cooldown_fraction": cooldown,
        "commit": _git_commit(),
    }
    record["test"], record["seconds"] = {}, {}
    with tempfile.TemporaryDirectory(prefix="cooldown-") as tmp:
        folder = Path(tmp)
        x_train.assign(target=y_train.to_numpy()).to_csv(folder / "train.csv", index=False)
        storage = f"sqlite:///{folder / 's.db'}"
        config = archsearch.SearchConfig.from_dict(
            {
                "study": {"name": "s", "storage": storage, "seed": seed, "n_trials": 2},
                "data": {"path": str(folder / "train.csv"), "target": "target", "task": spec.task},
                "space": SPACE,
                "train": {"num_threads": 1},
            }
        )
        study = archsearch.run_search(config, workers=1, log_dir=folder / "logs")
        best = study.best_trial
        record["best"] = {"widths": best.user_attrs.get("widths"), "best_epoch": best.user_attrs.get("best_epoch")}
        record["val"] = best.value
        for arm, value in (("stored", None), ("constant", 0.0), ("cooldown", cooldown)):
            out = folder / arm
            started = time.perf_counter()
            if value is None:
                archsearch.export_best(storage, "s", out, refit=False)
            else:
                refit_module.REFIT_COOLDOWN = value
                archsearch.export_best(storage, "s", out)
            predicted = archsearch.load_model(out).predict(x_test)
            record["test"][arm] = _score(metric, y_test, predicted)
            record["seconds"][arm] = round(time.perf_counter() - started, 1)
    return record


def summary(records: list[dict]) -> str:
    """Per table: mean test metric of each arm over seeds, and on how many seeds the cool-down beat constant."""
    lines = [
        "| dataset | metric | n seeds | stored (no refit) | refit, constant lr | refit, cool-down | cool-down vs constant | seeds better |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        rows = [r for r in records if r["dataset"] == dataset]
        metric = rows[0]["metric"]
        mean = {arm: float(np.mean([r["test"][arm] for r in rows])) for arm in ("stored", "constant", "cooldown")}
        sign = 1 if metric == "accuracy" else -1  # positive: the cool-down is better
        if metric == "accuracy":
            change = f"{100 * (mean['cooldown'] - mean['constant']):+.2f} pts"
        else:
            change = f"{100 * (mean['cooldown'] / mean['constant'] - 1):+.1f}% RMSE"
        better = sum(sign * (r["test"]["cooldown"] - r["test"]["constant"]) > 0 for r in rows)
        digits = 4 if metric == "accuracy" else 1
        cells = " | ".join(f"{mean[a]:.{digits}f}" for a in ("stored", "constant", "cooldown"))
        lines.append(f"| {dataset} | {metric} | {len(rows)} | {cells} | {change} | {better} of {len(rows)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="diamonds,computers,saratoga_houses,phoneme,spambase")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--cooldown", type=float, default=0.2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--table", action="store_true", help="print the summary of --out and exit")
    args = parser.parse_args()
    if args.table:
        print(summary([json.loads(line) for line in args.out.read_text(encoding="utf-8").splitlines() if line]))
        return 0
    for seed in [int(s) for s in args.seeds.split(",")]:
        for dataset in args.datasets.split(","):
            record = run(dataset, seed, args.cooldown)
            line = json.dumps(record)
            print(line, flush=True)
            with args.out.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
