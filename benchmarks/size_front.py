"""Issue #26 benchmark: the size front a multi-objective search finds, against the same wall time spent on
(a) the single-objective search, its trials re-read as a front (every trial stores its size), (b) random
search (single objective, no pruning) and (c) the multi-objective search without its stratum pruning, on
sklearn's shipped tables.

Per table, method and seed: the hypervolume of the val-quality vs log10(parameters) front (reference point:
score 0.5 and 10**6 parameters, the same for every run), the best val accuracy found under three parameter
budgets, and finished trials per hour. Each run is one in-process search with `[study] timeout` seconds and
no refit reserve. Timings on a loaded machine are upper bounds; the quality figures are not timings.

    python benchmarks/size_front.py --seconds 20 --seeds 3 --out benchmarks/results/size_front.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from archsearch.config import SearchConfig
from archsearch.controller import run_search
from archsearch.stats import log_cost_hypervolume
from archsearch.storage import FINISHED_STATES, keys, quality_trials

TABLES = ("wine", "breast_cancer", "digits")
BUDGETS = (1_000, 5_000, 25_000)  # parameters shipped
REF_SCORE, REF_PARAMS = 0.5, 1_000_000
METHODS = {
    "multi": {"objectives": ["accuracy", "params"], "sampler": "tpe", "pruner": "median"},
    # The same without archsearch's stratum pruning: what the rule saves (or costs) on the same wall time.
    "multi_nopruning": {"objectives": ["accuracy", "params"], "sampler": "tpe", "pruner": "none"},
    "single": {"sampler": "tpe", "pruner": "median"},
    "random": {"sampler": "random", "pruner": "none"},
}


def run_one(table: str, method: str, seed: int, seconds: float, folder: Path) -> dict:
    config = SearchConfig.from_dict(
        {
            "study": {
                "name": f"{table}-{method}-{seed}",
                "storage": f"sqlite:///{folder}/{table}-{method}-{seed}.db",
                "timeout": seconds,
                "reserve_refit": False,
                "seed": seed,
                "n_startup_trials": 5,
                "pruner_startup_trials": 3,
                **METHODS[method],
            },
            "data": {"dataset": table},
            "space": {
                "layers": [0, 3],
                "width": [4, 256],
                "normalization": ["none", "batch"],
                "recipe_baseline": False,
            },
            "train": {"epochs": 30, "patience": 6, "num_threads": 1},
        }
    )
    started = time.monotonic()
    study = run_search(config)
    wall = time.monotonic() - started
    trials = quality_trials(study)
    scores = [t.values[0] for t in trials]
    params = [t.user_attrs[keys.SIZE_PARAMS] for t in trials]
    finished = len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
    best_under = {str(b): max((s for s, p in zip(scores, params) if p <= b), default=None) for b in BUDGETS}
    return {
        "table": table,
        "method": method,
        "seed": seed,
        "wall_s": round(wall, 2),
        "finished": finished,
        "complete": len(trials),
        "trials_per_hour": round(finished / wall * 3600, 1),
        "hypervolume": round(log_cost_hypervolume(scores, params, REF_SCORE, REF_PARAMS), 5),
        "best_under": best_under,
    }


def summarize(runs: list[dict]) -> str:
    lines = [
        "| table | method | n | hypervolume (mean) | best val acc <= 1k / 5k / 25k params (mean) | trials/hour (mean) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for table in TABLES:
        for method in METHODS:
            rows = [r for r in runs if r["table"] == table and r["method"] == method]
            if not rows:
                continue
            under = []
            for b in BUDGETS:
                found = [r["best_under"][str(b)] for r in rows if r["best_under"][str(b)] is not None]
                under.append(f"{statistics.mean(found):.4f} ({len(found)})" if found else "none")
            hv = statistics.mean(r["hypervolume"] for r in rows)
            rate = statistics.mean(r["trials_per_hour"] for r in rows)
            lines.append(f"| {table} | {method} | {len(rows)} | {hv:.4f} | {' / '.join(under)} | {rate:,.0f} |")
    return "\n".join(lines)


def warm_up() -> None:
    """Import torch and time one tiny network first, so that no method's first run pays for the imports."""
    import torch._dynamo  # noqa: F401  (the first AdamW imports it: seconds)

    from archsearch.spaces import NetSpec
    from archsearch.trainers import measure_latency, train_mlp  # noqa: F401

    measure_latency(NetSpec((4,), (0.0,), "relu"), 3, 2, [0, 1, 2], min_run_time=0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="wall time per search")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tables", nargs="*", default=list(TABLES))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    warm_up()
    runs = []
    with tempfile.TemporaryDirectory(prefix="size-front-") as scratch:
        for seed in range(args.seeds):
            for table in args.tables:
                # The order rotates with the seed: a loaded machine's drift does not favour one method.
                names = list(METHODS)
                for method in names[seed % len(names) :] + names[: seed % len(names)]:
                    runs.append(run_one(table, method, seed, args.seconds, Path(scratch)))
                    print(json.dumps(runs[-1]), flush=True)
    print(summarize(runs))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seconds": args.seconds, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
