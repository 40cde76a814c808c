"""Test accuracy of one fixed MLP under a few training recipes, to choose the search defaults (issue #10).

Every recipe trains the same network (3 x 256 ReLU, no dropout, AdamW at lr 1e-3 without weight decay,
batch 128) with `train_mlp` on the same split and seeds; only the epoch budget and the recipe knobs
differ. The figure is the test accuracy of the best validation epoch, averaged over the seeds.

Usage:
    python benchmarks/training_recipe.py                       # digits and breast_cancer
    python benchmarks/training_recipe.py --csv phoneme.csv     # also a CSV with a `target` column
    python benchmarks/training_recipe.py --no-builtin --csv phoneme.csv --only "constant, 100 epochs"
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from _common import machine_summary, markdown_table, print_machine

from archsearch.spaces import NetSpec
from archsearch.trainers import TrainSettings, train_mlp
from archsearch.trainers.data import DataSpec, load_data

WIDTHS = [256, 256, 256]
BASE = {"lr": 1e-3, "optimizer": "adamw", "batch_size": 128, "device": "cpu"}
# (name, TrainSettings fields); the first is what a search trial trained with before issue #10.
RECIPES = [
    ("constant, 30 epochs, patience 8", {"epochs": 30, "patience": 8}),
    ("constant, 100 epochs", {"epochs": 100}),
    ("cosine w0.05, 100 epochs", {"epochs": 100, "lr_schedule": "cosine", "warmup": 0.05}),
    ("onecycle w0.05, 100 epochs", {"epochs": 100, "lr_schedule": "onecycle", "warmup": 0.05}),
    (
        "cosine w0.05 + ls 0.1, 100 epochs",
        {"epochs": 100, "lr_schedule": "cosine", "warmup": 0.05, "label_smoothing": 0.1},
    ),
    ("cosine w0.05 + clip 1.0, 100 epochs", {"epochs": 100, "lr_schedule": "cosine", "warmup": 0.05, "grad_clip": 1.0}),
    (
        "cosine w0.05 + batch norm, 100 epochs",
        {"epochs": 100, "lr_schedule": "cosine", "warmup": 0.05, "normalization": "batch"},
    ),
    (
        "cosine w0.05 + layer norm, 100 epochs",
        {"epochs": 100, "lr_schedule": "cosine", "warmup": 0.05, "normalization": "layer"},
    ),
    ("cosine w0.05, 30 epochs", {"epochs": 30, "lr_schedule": "cosine", "warmup": 0.05}),
    ("constant, 100 epochs, patience 8", {"epochs": 100, "patience": 8}),
    ("constant, 100 epochs, patience 20", {"epochs": 100, "patience": 20}),
    ("constant, lr 3e-3, 100 epochs", {"epochs": 100, "lr": 3e-3}),
    ("cosine w0.05, lr 3e-3, 100 epochs", {"epochs": 100, "lr_schedule": "cosine", "warmup": 0.05, "lr": 3e-3}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, action="append", default=[], help="a CSV with a 'target' column")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", action="append", default=[], help="run only the recipes with this exact name")
    parser.add_argument("--no-builtin", action="store_true", help="skip digits and breast_cancer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print_machine(machine_summary())
    specs = [] if args.no_builtin else [DataSpec(dataset="digits"), DataSpec(dataset="breast_cancer")]
    specs += [DataSpec(dataset=None, path=str(path.resolve()), task="classification") for path in args.csv]
    rows = []
    for spec in specs:
        data = load_data(spec)
        for name, fields in RECIPES:
            if args.only and name not in args.only:
                continue
            tests, epochs, started = [], [], time.perf_counter()
            for seed in range(args.seeds):
                result = train_mlp(
                    NetSpec(WIDTHS, [0.0] * len(WIDTHS), "relu"), data, TrainSettings(**{**BASE, **fields}, seed=seed)
                )
                tests.append(result.metrics["test_accuracy"])
                epochs.append(result.best_epoch)
            rows.append(
                [
                    data.name,
                    name,
                    f"{statistics.mean(tests):.4f}",
                    f"{statistics.stdev(tests):.4f}",
                    f"{statistics.mean(epochs):.0f}",
                    f"{(time.perf_counter() - started) / args.seeds:.1f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    print()
    print(f"n = {args.seeds} seeds per row; test accuracy at the best validation epoch.")
    print(markdown_table(["data", "recipe", "test acc (mean)", "sd", "best epoch (mean)", "s per run"], rows))


if __name__ == "__main__":
    main()
