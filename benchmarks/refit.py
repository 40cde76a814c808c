"""What `export` ships, measured on the test split: refit vs the search's weights, and ensembles vs one network.

For each dataset and study seed, a small search runs, then the best trial is shipped five ways and each is
scored on the test split that no search, refit or ensemble member saw:

- `no-refit`: the search's stored weights (trained on the training split);
- `refit-epochs`: refit on train + validation for the trial's best epoch (the default);
- `refit-steps`: refit for the same number of optimizer steps (best epoch x n_train / (n_train + n_val));
- `ensemble-5`: the mean prediction of the five best trials, each refit;
- `seeds-5`: the mean prediction of five seeds of the best trial, each refit.

Usage: python benchmarks/refit.py --datasets breast_cancer,wine,digits --seeds 0,1,2 --out refit.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import optuna

from archsearch.config import SearchConfig
from archsearch.controller import run_search
from archsearch.export import export_best
from archsearch.export._refit import train_member
from archsearch.pool import fit_rows, refit_epochs
from archsearch.trainers import ensemble_test_metrics
from archsearch.trainers.data import load_refit_data

WAYS = ("no-refit", "refit-epochs", "refit-steps", "ensemble-5", "seeds-5")


def _shipped_metric(folder: Path, key: str) -> float:
    return json.loads((folder / "architecture.json").read_text())["metadata"]["test_metrics"][key]


def measure(dataset: str, seed: int, scratch: Path, n_trials: int, epochs: int) -> dict:
    url = f"sqlite:///{scratch}/{dataset}-{seed}.db"
    config = SearchConfig.from_dict(
        {
            "study": {"name": "bench", "storage": url, "n_trials": n_trials, "seed": seed},
            "data": {"dataset": dataset},
            "space": {"layers": [0, 2], "width": [16, 128]},
            "train": {"epochs": epochs, "patience": 5},
        }
    )
    started = time.perf_counter()
    study = run_search(config, workers=1)
    key = f"test_{study.user_attrs['metric']}"
    best = study.best_trial
    row = {
        "dataset": dataset,
        "seed": seed,
        "metric": key,
        "best_trial": best.number,
        "n_test": study.user_attrs["data"]["n_test"],
    }
    row["no-refit"] = best.user_attrs[key]
    row["refit-epochs"] = _shipped_metric(export_best(url, "bench", scratch / "a"), key)
    data = load_refit_data(config.data)
    n_fit = fit_rows(study.user_attrs["data"], None)
    steps = refit_epochs(best.user_attrs["best_epoch"], n_fit, len(data.y_train), fallback=epochs, keep="steps")
    result = train_member(config, study.user_attrs["metric"], best, data, seed=best.user_attrs["seed"], epochs=steps)
    arch = best.user_attrs
    member = {
        "widths": arch["widths"],
        "dropouts": arch["dropouts"],
        "activation": arch["activation"],
        "state_dict": result.state_dict,
    }
    row["refit-steps"] = ensemble_test_metrics([member], data)[key]
    row["ensemble-5"] = _shipped_metric(export_best(url, "bench", scratch / "b", ensemble=5), key)
    row["seeds-5"] = _shipped_metric(export_best(url, "bench", scratch / "c", ensemble_seeds=5), key)
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="breast_cancer,wine,digits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default="refit.json")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory(prefix="archsearch-refit-") as scratch:
        for dataset in args.datasets.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                rows.append(measure(dataset, seed, Path(scratch), args.n_trials, args.epochs))
                print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    for dataset in args.datasets.split(","):
        mine = [r for r in rows if r["dataset"] == dataset]
        means = "  ".join(f"{way} {sum(r[way] for r in mine) / len(mine):.4f}" for way in WAYS)
        print(f"{dataset} ({mine[0]['metric']}, n = {len(mine)} seeds x {mine[0]['n_test']} test rows): {means}")


if __name__ == "__main__":
    main()
