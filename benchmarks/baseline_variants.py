"""The search's recipe baseline trial against variants of it, by hand, on the quality benchmark's tables (issue #10).

Each run trains `RECIPE_BASELINE`'s network and recipe (3 x 256 ReLU, batch norm, AdamW 1e-3, batch 128,
cosine with the default warm-up, label smoothing 0.1 on classification, the default 100 epochs and
patience 20) with `train_mlp` on the benchmark's training rows of one table and seed, as a search would
(archsearch's own validation and test splits of those rows), and one knob changed per variant. The figure
is archsearch's own test metric at the best validation epoch, paired by table and seed with the baseline's:
cheap (seconds a run), so many seeds, but it measures one trial, not a search.

Usage (needs the bench extra, as quality_vs_peers.py):
    python benchmarks/baseline_variants.py --datasets satimage,magic --seeds 0,1,2 --out runs.jsonl
    python benchmarks/baseline_variants.py --summary runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import print_and_append
from _peers_data import DATASETS, load, split

from archsearch.config import TrainConfig
from archsearch.spaces import RECIPE_BASELINE, NetSpec
from archsearch.trainers import TrainSettings, train_mlp
from archsearch.trainers.data import DataSpec, load_data

# name -> changes to the baseline: "width" and "dropout" change the network, the rest are TrainSettings fields.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "dropout0.15": {"dropout": 0.15},
    "width512": {"width": 512},
    "batch256": {"batch_size": 256},
    "wd1e-2": {"weight_decay": 1e-2},
}


def run(dataset: str, seed: int, variant: str, folder: Path) -> dict[str, Any]:
    frame, target, _ = load(dataset)
    task = DATASETS[dataset].task
    train, _ = split(target, task, seed)  # the benchmark's held-out test rows stay out, as in quality_vs_peers.py
    path = folder / f"{dataset}_{seed}.csv"
    if not path.exists():
        frame.iloc[train].assign(target=target.iloc[train].to_numpy()).to_csv(path, index=False)
    data = load_data(DataSpec(dataset=None, path=str(path), target="target", task=task, seed=seed))
    metric = "accuracy" if task == "classification" else "rmse"
    changes = dict(VARIANTS[variant])
    width, dropout = changes.pop("width", RECIPE_BASELINE["width"]), changes.pop("dropout", RECIPE_BASELINE["dropout"])
    defaults = TrainConfig()
    settings = TrainSettings(
        **{
            "lr": RECIPE_BASELINE["lr"],
            "optimizer": RECIPE_BASELINE["optimizer"],
            "batch_size": RECIPE_BASELINE["batch_size"],
            "lr_schedule": RECIPE_BASELINE["lr_schedule"],
            "normalization": RECIPE_BASELINE["normalization"],
            "label_smoothing": RECIPE_BASELINE["label_smoothing"] if task == "classification" else 0.0,
            "epochs": defaults.epochs,
            "patience": defaults.patience,
            "warmup": defaults.warmup,
            "metric": metric,
            "seed": seed,
            "num_threads": 1,
            **changes,
        }
    )
    n_layers = RECIPE_BASELINE["n_layers"]
    started = time.perf_counter()
    result = train_mlp(NetSpec([width] * n_layers, [dropout] * n_layers, RECIPE_BASELINE["activation"]), data, settings)
    return {
        "dataset": dataset,
        "seed": seed,
        "variant": variant,
        "metric": metric,
        "val": result.best_value,
        "test": result.metrics[f"test_{metric}"],
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds": round(time.perf_counter() - started, 1),
    }


def summary(records: list[dict[str, Any]]) -> str:
    """Per variant: pairs better / worse than the baseline and the mean difference per table (points or % RMSE)."""
    by_key = {(r["dataset"], r["seed"], r["variant"]): r for r in records}
    lines = [
        "| variant | pairs better / worse | median per table | per table (mean difference, n) |",
        "| --- | --- | --- | --- |",
    ]
    for variant in sorted({r["variant"] for r in records} - {"base"}):
        better = worse = 0
        means, cells = [], []
        for dataset in sorted({r["dataset"] for r in records}):
            diffs = []
            for (d, seed, v), record in by_key.items():
                base = by_key.get((d, seed, "base"))
                if d != dataset or v != variant or base is None:
                    continue
                if record["metric"] == "rmse":
                    diffs.append((base["test"] - record["test"]) / base["test"] * 100)
                else:
                    diffs.append((record["test"] - base["test"]) * 100)
            if diffs:
                better += sum(x > 1e-9 for x in diffs)
                worse += sum(x < -1e-9 for x in diffs)
                means.append(statistics.mean(diffs))
                cells.append(f"{dataset} {means[-1]:+.2f} ({len(diffs)})")
        if means:
            lines.append(f"| {variant} | {better} / {worse} | {statistics.median(means):+.2f} | {', '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="satimage,magic,segment,phoneme,spambase,digits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {list(VARIANTS)}")
    parser.add_argument("--out", type=Path, help="append one JSON line per run")
    parser.add_argument("--summary", type=Path, help="print the table from a JSONL of runs and exit")
    args = parser.parse_args()
    if args.summary:
        print(summary([json.loads(line) for line in args.summary.read_text().splitlines() if line.strip()]))
        return
    unknown = sorted(set(args.variants.split(",")) - set(VARIANTS)) + sorted(
        set(args.datasets.split(",")) - set(DATASETS)
    )
    if unknown:
        parser.error(f"unknown variant or dataset: {', '.join(unknown)}")
    torch.set_num_threads(1)
    records = []
    with tempfile.TemporaryDirectory(prefix="baseline-") as tmp:
        for dataset in args.datasets.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                for variant in args.variants.split(","):
                    records.append(run(dataset, seed, variant, Path(tmp)))
                    print_and_append(records[-1], args.out)
    print(summary(records))


if __name__ == "__main__":
    main()
