"""Heads on frozen pretrained features (issue #24): a real transfer case built offline, and a scale check.

Transfer: two small CNNs of different design are trained with torch on scikit-learn's digits 0-4 and frozen;
their penultimate features (64 and 32 values) of the digits 5-9, which they never saw, are the inputs of a
5-class task. Per seed, 30% of those rows are held out; archsearch searches the rest (10 trials) with the two backbones as feature blocks (`[space] blocks = [["a"], ["b"], ["a", "b"]]`) and both
heads (`[space] head = ["softmax", "one_vs_rest"]`), exports its best model (`export_best`, the default
refit and greedy ensemble) and predicts the held-out rows; logistic regression and scikit-learn's
MLPClassifier fit the same rows and predict the same held-out rows. The stored trials answer "linear head or
hidden layers, one backbone or both, softmax or one-vs-rest" by the best validation accuracy of each.

Transfer also runs `archsearch sensitivity` of the best trial with `--paired` seeds (default 5) and no width
steps, so "linear model or hidden layers" is answered with paired seeds as the report does, and RealMLP-TD
(pytabkit, the bench extra) fits the same rows.

Scale: synthetic frozen-feature-like vectors (non-negative, from a random ReLU map of class clusters),
4,000 x 2,000 with 40 classes, searched from a config naming only the file, 2 workers, in a child process:
time from the start to the first completed hidden-layer trial, seconds per epoch, peak memory of the
process tree; the exported model and logistic regression on the same held-out rows.

Large (`--part large`): 50,000 x 2,048 with 1,000 classes, 2 workers, `--large-budget` seconds (default 300),
no export: seconds per epoch, memory per worker, trials per hour.

    .venv/bin/python benchmarks/frozen_features.py --seeds 3 --trials 10 --scale-budget 150

Timings on a loaded machine are upper bounds. Results go to benchmarks/results/frozen_features.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ChildFailed, emit, print_and_append, run_child  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "frozen_features.jsonl"


def backbone_features(seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Two CNNs trained on digits 0-4, frozen; their penultimate features of digits 5-9, and the labels 0-4."""
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)  # (n, 1, 8, 8)
    labels = torch.tensor(digits.target)
    source, target = labels < 5, labels >= 5
    torch.manual_seed(seed)
    a = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(512, 64), nn.ReLU(),
    )  # fmt: skip
    b = nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(128, 32), nn.Tanh(),
    )  # fmt: skip
    features = []
    for body, width in ((a, 64), (b, 32)):
        model = nn.Sequential(body, nn.Linear(width, 5))
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, y = images[source], labels[source]
        for _ in range(15):
            for batch in torch.randperm(len(x)).split(64):
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                optimizer.step()
        body.eval()
        with torch.no_grad():
            features.append(body(images[target]).numpy())
    return np.concatenate(features, axis=1), (labels[target] - 5).numpy(), 64


def _held_out(y: np.ndarray, seed: int, fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(y)), test_size=fraction, stratify=y, random_state=seed)


def _peers(x_dev, y_dev, x_held, y_held, seed: int) -> dict[str, dict[str, float]]:
    """Logistic regression (standardized inputs) and MLPClassifier on the same rows: held-out accuracy, seconds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = {}
    models = {
        "logistic_regression": LogisticRegression(max_iter=1000),
        "sklearn_mlp": MLPClassifier(hidden_layer_sizes=(256,), early_stopping=True, max_iter=300, random_state=seed),
    }
    for name, model in models.items():
        started = time.perf_counter()
        pipeline = make_pipeline(StandardScaler(), model).fit(x_dev, y_dev)
        out[name] = {
            "held_out_accuracy": float((pipeline.predict(x_held) == y_held).mean()),
            "seconds": time.perf_counter() - started,
        }
    try:  # the bench extra (`pip install -e '.[bench]'`)
        from pytabkit import RealMLP_TD_Classifier
    except ImportError:
        return out
    started = time.perf_counter()
    # RealMLP-TD standardizes (robustly) itself and makes its own validation split from the dev rows.
    realmlp = RealMLP_TD_Classifier(random_state=seed, n_threads=2).fit(x_dev, y_dev)
    out["realmlp_td"] = {
        "held_out_accuracy": float((realmlp.predict(x_held) == y_held).mean()),
        "seconds": time.perf_counter() - started,
    }
    return out


def _search_and_export(
    folder: Path,
    x_dev,
    y_dev,
    seed: int,
    budget: float,
    extra: dict[str, Any],
    workers: int = 1,
    split: int | None = None,
) -> tuple[Any, Path, float, float]:
    """Run archsearch on the dev rows for `budget` seconds, export its best model; the study, folder, times."""
    import optuna

    from archsearch import SearchConfig, run_search
    from archsearch.export import export_best

    if split is None:
        np.savez(folder / "dev.npz", X=x_dev.astype(np.float32), y=y_dev)
    else:  # two backbones' vectors as the arrays X_a and X_b: the file alone names the blocks
        x_dev = x_dev.astype(np.float32)
        np.savez(folder / "dev.npz", X_a=x_dev[:, :split], X_b=x_dev[:, split:], y=y_dev)
    url = f"sqlite:///{folder}/study.db"
    # A number budget is seconds of wall time; None leaves the trial count to extra["study"].
    study = {"name": "ff", "storage": url, "seed": seed, **({} if budget is None else {"timeout": budget})}
    sections = {**extra, "study": {**study, **extra.get("study", {})}}
    sections["data"] = {"path": str(folder / "dev.npz"), **sections.get("data", {})}
    started = time.perf_counter()
    run_search(SearchConfig.from_dict(sections), workers=workers)
    searched = time.perf_counter() - started
    started = time.perf_counter()
    export_best(url, "ff", folder / "model")
    exported = time.perf_counter() - started
    return optuna.load_study(study_name="ff", storage=url), folder / "model", searched, exported


def _best_by(study, key) -> dict[str, float]:
    """The best validation value among complete trials, per value of `key(trial)`."""
    best: dict[str, float] = {}
    for trial in study.get_trials(deepcopy=False, states=(__import__("optuna").trial.TrialState.COMPLETE,)):
        name = key(trial)
        best[name] = max(best.get(name, -1.0), trial.value)
    return best


def transfer(seed: int, trials: int, features, paired: int = 5) -> dict[str, Any]:
    """One seed of the transfer case: archsearch (`trials` trials of 40 epochs at most) against the peers on
    the same held-out rows. A trial count, not a wall time: on the loaded machine a 60 s budget held only the
    linear trial."""
    from archsearch.storage import keys
    from archsearch.trainers import load_model

    x, y, split = features
    dev, held = _held_out(y, seed)
    record: dict[str, Any] = {"part": "transfer", "seed": seed, "trials": trials, "rows": [len(dev), len(held)]}
    record["peers"] = _peers(x[dev], y[dev], x[held], y[held], seed)
    record["peers_one_backbone"] = {
        block: _peers(x[dev][:, cols], y[dev], x[held][:, cols], y[held], seed)["logistic_regression"]
        for block, cols in (("a", slice(0, split)), ("b", slice(split, None)))
    }
    extra = {
        "study": {"n_trials": trials},
        "data": {"blocks": {"a": [0, split], "b": [split, x.shape[1]]}},
        # Batches of 32 and 64: 440 training rows give a linear head 7 to 14 steps an epoch, not 2 to 4.
        "space": {"blocks": [["a"], ["b"], ["a", "b"]], "head": ["softmax", "one_vs_rest"], "batch_size": [32, 64]},
        "train": {"epochs": 40, "patience": 10},
    }
    with tempfile.TemporaryDirectory() as tmp:
        study, model, searched, exported = _search_and_export(Path(tmp), x[dev], y[dev], seed, None, extra)
        predicted = load_model(model).predict(x[held])
        record["archsearch"] = {
            "held_out_accuracy": float((predicted == y[held]).mean()),
            "seconds": searched + exported,
            "search_s": searched,
            "export_s": exported,
            "trials": len(study.trials),
        }
        record["best_val_by_depth"] = _best_by(study, lambda t: "linear" if t.user_attrs[keys.DEPTH] == 0 else "hidden")
        record["best_val_by_blocks"] = _best_by(study, lambda t: "+".join(t.user_attrs.get(keys.BLOCKS, ["a", "b"])))
        record["best_val_by_head"] = _best_by(study, lambda t: t.user_attrs.get(keys.HEAD, "softmax"))
        if paired:
            record["paired"] = _paired_depth(Path(tmp), paired)
    return record


def _paired_depth(folder: Path, repeats: int) -> dict[str, Any]:
    """`archsearch sensitivity` of the best trial with `repeats` seeds and no width steps: its linear neighbour
    (or, for a linear best trial, its one-hidden-layer neighbours) against it, paired by seed, as the report says."""
    import optuna

    from archsearch.dashboards._choices import depth_lines
    from archsearch.sensitivity import run_sensitivity

    started = time.perf_counter()
    url = f"sqlite:///{folder}/study.db"
    result = run_sensitivity(url, "ff", repeats=repeats, steps=())
    (centre,) = result.to_dict()["centres"]
    linear = not centre["widths"]
    effects = {
        n["change"]: n["effect"]
        for n in centre["neighbours"]
        if n["effect"] is not None and (n["kind"] == "hidden_layer" if linear else not n["widths"])
    }
    return {
        "centre": {"trial": centre["trial"], "widths": centre["widths"], "mean": centre["mean"]},
        "effects": effects,
        "report_lines": depth_lines(optuna.load_study(study_name="ff", storage=url)),
        "seconds": time.perf_counter() - started,
    }


def synthetic(rows: int = 4000, features: int = 2000, classes: int = 40, seed: int = 0):
    """Frozen-feature-like vectors: each class 4 clusters in a 32-d latent space, a random ReLU map to `features`
    values with noise (non-negative, like a ReLU network's penultimate layer)."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % classes
    mode = rng.integers(4, size=rows)
    centres = rng.normal(size=(classes, 4, 32))
    latent = centres[y, mode] + rng.normal(size=(rows, 32))
    mixing = rng.normal(size=(32, features)) / np.sqrt(32)
    x = np.maximum(latent @ mixing + 1.2 * rng.normal(size=(rows, features)), 0.0)
    return x.astype(np.float32), y


SCALE_SPLIT = 1000  # the 2,000 values are two "backbones" of 1,000 (X_a, X_b), as in the case


def _report_lines(study) -> list[str]:
    """The report's summary lines on blocks, heads and depth (what a user reads)."""
    from archsearch.dashboards._choices import choice_lines, depth_lines

    return [*choice_lines(study), *depth_lines(study)]


def scale_child(budget: float) -> None:
    """In a child process: the 4,000 x 2,000 search with 2 workers, the export and logistic regression."""
    import optuna

    from archsearch.storage import keys
    from archsearch.trainers import load_model

    started = time.time()
    x, y = synthetic()
    dev, held = _held_out(y, 0, 0.2)
    with tempfile.TemporaryDirectory() as tmp:
        study, model, searched, exported = _search_and_export(
            Path(tmp), x[dev], y[dev], 0, budget, {}, workers=2, split=SCALE_SPLIT
        )
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        hidden = [t for t in trials if t.user_attrs[keys.DEPTH] > 0]
        first_hidden = min((t.datetime_complete.timestamp() - started for t in hidden), default=None)
        per_epoch = [t.user_attrs[keys.TRAIN_SECONDS] / max(t.user_attrs[keys.EPOCHS_RUN], 1) for t in hidden]
        accuracy = float((load_model(model).predict(x[held]) == y[held]).mean())
        emit(
            {
                "task": study.user_attrs[keys.TASK],
                "task_line": study.user_attrs.get(keys.TASK_LINE),
                "space": {k: study.user_attrs[keys.CONFIG]["space"][k] for k in ("embedding", "width")},
                "first_hidden_trial_s": first_hidden,
                "seconds_per_epoch_hidden": per_epoch,
                "widths": [t.user_attrs[keys.WIDTHS] for t in hidden],
                "complete_trials": len(trials),
                "linear_best_val": max((t.value for t in trials if t.user_attrs[keys.DEPTH] == 0), default=None),
                "best_val_by_blocks": _best_by(study, lambda t: "+".join(t.user_attrs.get(keys.BLOCKS, ["a", "b"]))),
                "report_choice_lines": _report_lines(study),
                "hidden_best_val": max((t.value for t in hidden), default=None),
                "held_out_accuracy": accuracy,
                "search_s": searched,
                "export_s": exported,
                "rows": [len(dev), len(held)],
            }
        )


def scale(budget: float) -> dict[str, Any]:
    """The scale check in a child process (peak memory of its tree), and logistic regression here."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    try:
        child = run_child([__file__, "--scale-child", str(budget)], timeout=budget + 240)
    except ChildFailed as e:
        return {"part": "scale", "error": str(e)[-2000:]}
    x, y = synthetic()
    dev, held = _held_out(y, 0, 0.2)
    started = time.perf_counter()
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x[dev], y[dev])
    peer = {"held_out_accuracy": float((logistic.predict(x[held]) == y[held]).mean())}
    peer["seconds"] = time.perf_counter() - started
    for name, cols in (("a_only", slice(0, SCALE_SPLIT)), ("b_only", slice(SCALE_SPLIT, None))):
        one = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x[dev][:, cols], y[dev])
        peer[name] = float((one.predict(x[held][:, cols]) == y[held]).mean())
    return {
        "part": "scale",
        "budget_s": budget,
        "workers": 2,
        **child.payload,
        "peak_tree_rss_mb": child.peak_rss_mb,
        "rss_method": child.rss_method,
        "logistic_regression": peer,
    }


def large_child(budget: float) -> None:
    """In a child process: 50,000 x 2,048 vectors with 1,000 classes, searched for `budget` seconds by 2 workers
    from a config naming only the file (no export): the throughput figures of the issue."""
    import optuna

    from archsearch import SearchConfig, run_search
    from archsearch.storage import keys

    started = time.time()
    x, y = synthetic(rows=50_000, features=2048, classes=1000)
    built = time.time() - started
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "large.npz", X=x, y=y)
        del x, y
        url = f"sqlite:///{tmp}/study.db"
        # The refit reserve's epoch-level stop ends running trials at the deadline; without it Optuna lets them
        # finish (a 3 x 1,024 trial: 25 minutes on 2 cores, BENCHMARKS.md 14).
        study = {"name": "large", "storage": url, "timeout": budget}
        config = SearchConfig.from_dict({"study": study, "data": {"path": f"{tmp}/large.npz"}})
        searched_at = time.time()
        run_search(config, workers=2)
        searched = time.time() - searched_at
        loaded = optuna.load_study(study_name="large", storage=url)
        finished = loaded.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        )
        emit(
            {
                "task_line": loaded.user_attrs.get(keys.TASK_LINE),
                "space": {k: loaded.user_attrs[keys.CONFIG]["space"][k] for k in ("embedding", "width")},
                "data_built_s": built,
                "search_s": searched,
                "trials": [
                    {
                        "state": t.state.name,
                        "widths": t.user_attrs.get(keys.WIDTHS),
                        "epochs_run": t.user_attrs.get(keys.EPOCHS_RUN),
                        "seconds_per_epoch": t.user_attrs.get(keys.TRAIN_SECONDS, 0)
                        / max(t.user_attrs.get(keys.EPOCHS_RUN) or 1, 1),
                        "val": t.value if t.value is not None else (list(t.intermediate_values.values()) or [None])[-1],
                        "peak_rss_mb": t.user_attrs.get(keys.PEAK_RSS_MB),
                        "reason": t.user_attrs.get(keys.PRUNED_REASON),
                    }
                    for t in loaded.get_trials(deepcopy=False)
                ],
                "finished_trials": len(finished),
                "trials_per_hour": 3600 * len(finished) / searched,
            }
        )


def large(budget: float) -> dict[str, Any]:
    """The 50,000 x 2,048 / 1,000-class throughput check in a child process (peak memory of its tree)."""
    try:
        child = run_child([__file__, "--large-child", str(budget)], timeout=budget + 600)
    except ChildFailed as e:
        return {"part": "large", "error": str(e)[-2000:]}
    return {"part": "large", "budget_s": budget, "workers": 2, **child.payload, "peak_tree_rss_mb": child.peak_rss_mb}


def embedding_cost(widths=(16, 64, 256, 512, 2000), rows: int = 2000) -> dict[str, Any]:
    """Seconds per epoch of a 2 x 256 network with and without the "pl" embedding (16 values) by input width:
    where `spaces.MAX_EMBEDDED_FEATURES` comes from. One thread, the second of two epochs' mean."""
    from archsearch.spaces import NetSpec
    from archsearch.trainers import TrainSettings, train_mlp
    from archsearch.trainers.data import DataSpec, load_data

    rng = np.random.default_rng(0)
    out: dict[str, Any] = {
        "part": "embedding",
        "rows": rows,
        "network": "256-256",
        "threads": 1,
        "seconds_per_epoch": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for width in widths:
            path = Path(tmp) / f"w{width}.npz"
            np.savez(path, X=rng.normal(size=(rows, width)).astype(np.float32), y=np.arange(rows) % 10)
            data = load_data(DataSpec(dataset=None, path=str(path)))
            timing = {}
            for embedding in ("none", "pl", "none"):  # "none" twice: the first run warms torch up
                net = NetSpec((256, 256), (0.0, 0.0), "relu", embedding=embedding, embedding_dim=16)
                result = train_mlp(net, data, TrainSettings(epochs=2, num_threads=1))
                timing[embedding] = result.train_seconds / 2
            out["seconds_per_epoch"][width] = timing
    return out


def summarize(records: list[dict[str, Any]]) -> None:
    """Means over seeds of the held-out accuracies and the verdict counts, printed for BENCHMARKS.md."""
    runs = [r for r in records if r.get("part") == "transfer"]
    if runs:
        n = len(runs)
        for name, pick in (
            ("archsearch", lambda r: r["archsearch"]),
            ("logistic_regression", lambda r: r["peers"]["logistic_regression"]),
            ("sklearn_mlp", lambda r: r["peers"]["sklearn_mlp"]),
            ("realmlp_td", lambda r: r["peers"].get("realmlp_td")),
            ("logistic_regression a only", lambda r: r["peers_one_backbone"]["a"]),
            ("logistic_regression b only", lambda r: r["peers_one_backbone"]["b"]),
        ):
            if any(pick(r) is None for r in runs):
                continue
            values = [pick(r)["held_out_accuracy"] for r in runs]
            seconds = [pick(r)["seconds"] for r in runs]
            print(
                f"{name}: held-out accuracy {statistics.mean(values):.4f} (n = {n}, {values}), {statistics.mean(seconds):.1f} s"
            )
        for question in ("best_val_by_depth", "best_val_by_blocks", "best_val_by_head"):
            print(question, [r[question] for r in runs])
        for r in runs:
            for line in r.get("paired", {}).get("report_lines", []):
                print(f"seed {r['seed']}: {line}")
    for r in records:
        if r.get("part") in ("scale", "large"):
            print("scale", json.dumps(r))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10, help="archsearch trials per transfer seed")
    parser.add_argument("--scale-budget", type=float, default=150.0, help="archsearch seconds of the scale check")
    parser.add_argument("--paired", type=int, default=5, help="seeds of the paired sensitivity check (0: none)")
    parser.add_argument("--large-budget", type=float, default=300.0, help="seconds of the 50,000-row search")
    parser.add_argument("--part", choices=("all", "transfer", "scale", "large", "embedding"), default="all")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--scale-child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--large-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child is not None:
        scale_child(args.scale_child)
        return
    if args.large_child is not None:
        large_child(args.large_child)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records = []
    if args.part in ("all", "transfer"):
        features = backbone_features()
        for seed in range(args.seeds):
            records.append(transfer(seed, args.trials, features, args.paired))
            print_and_append(records[-1], args.out)
    if args.part in ("all", "scale"):
        records.append(scale(args.scale_budget))
        print_and_append(records[-1], args.out)
    if args.part in ("all", "large"):
        records.append(large(args.large_budget))
        print_and_append(records[-1], args.out)
    if args.part in ("all", "embedding"):
        records.append(embedding_cost())
        print_and_append(records[-1], args.out)
    summarize(records)


if __name__ == "__main__":
    main()
