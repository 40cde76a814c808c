"""The greedy ensemble export against the single refit network, on the same search (issue #10).

For each table and seed this runs `quality_vs_peers.py`'s archsearch contender (its split, its budget:
RealMLP-TD's cached same-machine wall time) and exports the finished study twice, with
`greedy_ensemble=False` (one refit network) and `greedy_ensemble=True`, then scores both on the
benchmark's held-out test rows. Both exports read the same trials, so the difference is the export's
alone, free of the run-to-run noise of the search. The search's wall time includes both exports.

Usage (needs the bench extra, as quality_vs_peers.py):
    python benchmarks/greedy_ensemble.py --datasets phoneme,magic --seeds 0,1 --out runs.jsonl
    python benchmarks/greedy_ensemble.py --summary runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, emit, print_and_append, run_child
from _peers_data import DATASETS, load, split

HERE = Path(__file__).resolve().parent
CACHE = HERE / "results" / "quality_vs_peers_same_machine.jsonl"


def run(dataset: str, seed: int, budget: float) -> dict[str, Any]:
    """One search, exported both ways, scored on the benchmark's test rows (in this process)."""
    import pandas as pd
    import quality_vs_peers

    import archsearch

    exported: dict[str, Any] = {}
    export_best = archsearch.export_best

    def both(storage: str, name: str, out: Path, **kwargs: Any) -> Path:
        # quality_vs_peers scores the folder `out`: the single network; the greedy one goes beside it.
        folder = export_best(storage, name, out, greedy_ensemble=False, **kwargs)
        greedy = export_best(storage, name, Path(out).parent / "greedy", greedy_ensemble=True, **kwargs)
        test_rows = pd.read_csv(Path(out).parent / "test.csv")
        exported["predictions"] = archsearch.load_model(greedy).predict(test_rows)
        exported["metadata"] = json.loads((greedy / "architecture.json").read_text())["metadata"]
        return folder

    archsearch.export_best = both
    record = quality_vs_peers.run_one("archsearch", dataset, seed, budget, 1)
    task = DATASETS[dataset].task
    frame, target, _ = load(dataset)
    _, test = split(target, task, seed)
    y_test = target.iloc[test].reset_index(drop=True)
    meta = exported["metadata"]
    return {
        "dataset": dataset,
        "seed": seed,
        "metric": record["metric"],
        "single": record["test"],
        "greedy": quality_vs_peers._score(record["metric"], y_test, exported["predictions"]),
        "greedy_ensemble": meta.get("greedy_ensemble"),
        "ensemble": meta.get("ensemble"),
        "trials": record["trials"],
        "budget_seconds": budget,
        "wall_seconds": record["wall_seconds"],
        "export_seconds": record["export_seconds"],
        "commit": record["commit"],
        "date": record["date"],
    }


def _difference(record: dict[str, Any]) -> float:
    """Greedy minus single: accuracy points, or % of the single network's RMSE (positive = better)."""
    if record["metric"] == "rmse":
        return (record["single"] - record["greedy"]) / record["single"] * 100
    return (record["greedy"] - record["single"]) * 100


def summary(records: list[dict[str, Any]]) -> str:
    """Pairs better / worse / the same, and the mean difference per table."""
    diffs = [_difference(r) for r in records]
    lines = [
        "| dataset | metric | seeds | greedy vs single, per seed | mean | members kept |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    means = []
    for dataset in sorted({r["dataset"] for r in records}):
        mine = sorted((r for r in records if r["dataset"] == dataset), key=lambda r: r["seed"])
        values = [_difference(r) for r in mine]
        means.append(statistics.mean(values))
        kept = ", ".join(str((r["greedy_ensemble"] or {}).get("members")) for r in mine)
        cells = " / ".join(f"{v:+.2f}" for v in values)
        lines.append(f"| {dataset} | {mine[0]['metric']} | {len(mine)} | {cells} | {means[-1]:+.2f} | {kept} |")
    better, worse = sum(d > 1e-9 for d in diffs), sum(d < -1e-9 for d in diffs)
    lines.append(
        f"\n{better} pairs better, {worse} worse, {len(diffs) - better - worse} the same (n = {len(diffs)}); "
        f"median per table {statistics.median(means):+.2f}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", type=Path, help="append one JSON line per run")
    parser.add_argument("--summary", type=Path, help="print the table from a JSONL of runs and exit")
    parser.add_argument("--child", nargs=3, metavar=("DATASET", "SEED", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.summary:
        print(summary([json.loads(line) for line in args.summary.read_text().splitlines() if line.strip()]))
        return
    if args.child:
        emit(run(args.child[0], int(args.child[1]), float(args.child[2])))
        return
    budgets = {}
    for line in CACHE.read_text().splitlines():
        record = json.loads(line)
        if record["contender"] == "realmlp":
            budgets[(record["dataset"], record["seed"])] = round(record["wall_seconds"], 1)
    records = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for dataset in args.datasets.split(","):
            if (dataset, seed) not in budgets:
                parser.error(f"no cached RealMLP-TD time for {dataset} seed {seed} in {CACHE}")
            # A child process per search, as quality_vs_peers.py runs them: each starts from a clean torch.
            child = [
                str(Path(__file__).relative_to(REPO_ROOT)),
                "--child",
                dataset,
                str(seed),
                str(budgets[(dataset, seed)]),
            ]
            records.append(run_child(child, timeout=3600).payload)
            print_and_append(records[-1], args.out)
    print(summary(records))


if __name__ == "__main__":
    main()
