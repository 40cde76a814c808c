"""Two exports of the same search, compared (issue #10): the greedy ensemble against the single refit
network (`--pair greedy`, the default), or a regression export clamped to its training targets' range
against the same export unclamped (`--pair clamp`).

For each table and seed this runs `quality_vs_peers.py`'s archsearch contender (its split, its budget:
RealMLP-TD's cached same-machine wall time) and exports the finished study twice, the first way (which
quality_vs_peers scores as its own `test`) and the second, then scores both on the benchmark's held-out
test rows. Both exports read the same trials, so the difference is the export's alone, free of the
run-to-run noise of the search. The search's wall time includes both exports.

Usage (needs the bench extra, as quality_vs_peers.py):
    python benchmarks/greedy_ensemble.py --datasets phoneme,magic --seeds 0,1 --out runs.jsonl
    python benchmarks/greedy_ensemble.py --pair clamp --datasets diamonds,computers,saratoga_houses --out c.jsonl
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
# Per pair: (name, export_best arguments) of the first export and of the second, whose gain is reported.
PAIRS = {
    "greedy": (("single", {"greedy_ensemble": False}), ("greedy", {"greedy_ensemble": True})),
    "clamp": (("free", {"clamp": False}), ("clamped", {"clamp": True})),
}


def run(dataset: str, seed: int, budget: float, pair: str = "greedy") -> dict[str, Any]:
    """One search, exported both ways, scored on the benchmark's test rows (in this process)."""
    import pandas as pd
    import quality_vs_peers

    import archsearch

    (first, first_args), (second, second_args) = PAIRS[pair]
    exported: dict[str, Any] = {}
    export_best = archsearch.export_best

    def both(storage: str, name: str, out: Path, **kwargs: Any) -> Path:
        # quality_vs_peers scores the folder `out`: the first export; the second goes beside it.
        folder = export_best(storage, name, out, **first_args, **kwargs)
        other = export_best(storage, name, Path(out).parent / second, **second_args, **kwargs)
        test_rows = pd.read_csv(Path(out).parent / "test.csv")
        exported["predictions"] = archsearch.load_model(other).predict(test_rows)
        exported["architecture"] = json.loads((other / "architecture.json").read_text())
        return folder

    archsearch.export_best = both
    record = quality_vs_peers.run_one("archsearch", dataset, seed, budget, 1)
    task = DATASETS[dataset].task
    frame, target, _ = load(dataset)
    _, test = split(target, task, seed)
    y_test = target.iloc[test].reset_index(drop=True)
    meta = exported["architecture"]["metadata"]
    return {
        "dataset": dataset,
        "seed": seed,
        "metric": record["metric"],
        "pair": pair,
        first: record["test"],
        second: quality_vs_peers._score(record["metric"], y_test, exported["predictions"]),
        "greedy_ensemble": meta.get("greedy_ensemble"),
        "ensemble": meta.get("ensemble"),
        "target_range": exported["architecture"]["preprocessing"].get("target_range"),
        "trials": record["trials"],
        "budget_seconds": budget,
        "wall_seconds": record["wall_seconds"],
        "export_seconds": record["export_seconds"],
        "commit": record["commit"],
        "date": record["date"],
    }


def _difference(record: dict[str, Any]) -> float:
    """Second export minus first: accuracy points, or % of the first's RMSE (positive = the second is better)."""
    (first, _), (second, _) = PAIRS[record.get("pair", "greedy")]
    if record["metric"] == "rmse":
        return (record[first] - record[second]) / record[first] * 100
    return (record[second] - record[first]) * 100


def summary(records: list[dict[str, Any]]) -> str:
    """Pairs better / worse / the same, and the mean difference per table."""
    diffs = [_difference(r) for r in records]
    (first, _), (second, _) = PAIRS[records[0].get("pair", "greedy")]
    lines = [
        f"| dataset | metric | seeds | {second} vs {first}, per seed | mean | members kept |",
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
    parser.add_argument("--pair", choices=sorted(PAIRS), default="greedy", help="which two exports to compare")
    parser.add_argument("--out", type=Path, help="append one JSON line per run")
    parser.add_argument("--summary", type=Path, help="print the table from a JSONL of runs and exit")
    parser.add_argument("--child", nargs=4, metavar=("DATASET", "SEED", "BUDGET", "PAIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.summary:
        print(summary([json.loads(line) for line in args.summary.read_text().splitlines() if line.strip()]))
        return
    if args.child:
        emit(run(args.child[0], int(args.child[1]), float(args.child[2]), args.child[3]))
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
                args.pair,
            ]
            records.append(run_child(child, timeout=3600).payload)
            print_and_append(records[-1], args.out)
    print(summary(records))


if __name__ == "__main__":
    main()
