"""Memory per local worker with the data shared by the pool (issue #24) and with each worker loading its own.

The 4,000 x 2,000, 40-class vectors of `frozen_features.py`'s scale check (or `--rows`, `--features`,
`--classes`), searched from a config naming only
the file, 2 workers, `--trials` trials of `--epochs` epochs, in two ways:
- "own": every worker loads and prepares the data itself: what a local pool did before 2026-12-08, and what
  `archsearch worker` still does (`join_study` here, on a study `open_search_study` created);
- "shared": `run_search`'s pool prepares the data once and its workers map it (`archsearch.pool._shared_data`).

While the workers run, each one's /proc/<pid>/smaps_rollup and status are read every 0.2 s: the peaks of its
RSS, its PSS (each shared page split among the processes mapping it) and its USS (its private pages) over the
samples, and its exact peak RSS (VmHWM, "hwm"). Each trial's stored
`peak_rss_mb` and `pss_mb`, which `status` prints, are kept too. The runs alternate, own first. Linux only.

    .venv/bin/python benchmarks/worker_memory.py --repeats 2 --trials 4 --epochs 3

Results go to benchmarks/results/worker_memory.jsonl. Memory does not depend on the machine's load; times do.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_and_append  # noqa: E402
from frozen_features import synthetic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "worker_memory.jsonl"
SAMPLE_SECONDS = 0.2
_FIELDS = {"Rss:": "rss", "Pss:": "pss", "Private_Clean:": "uss", "Private_Dirty:": "uss"}


def rollup_mb(pid: int) -> dict[str, float] | None:
    """RSS, PSS and USS (private clean + dirty) of process `pid` now, and its peak RSS so far (VmHWM, exact
    between samples), in MB; None once it is gone."""
    sizes = {"rss": 0, "pss": 0, "uss": 0, "hwm": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                name = line.split(maxsplit=1)[0]
                if name in _FIELDS:
                    sizes[_FIELDS[name]] += int(line.split()[1])
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            sizes["hwm"] = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    return {name: kb / 1024 for name, kb in sizes.items()}


def worker_pids(parent: int) -> list[int]:
    """The pool workers `parent` started (`python -m archsearch.pool.worker_entry`)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text(errors="replace")
            command = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"archsearch.pool.worker_entry" in command:
            pids.append(int(entry.name))
    return pids


class WorkerSampler(threading.Thread):
    """Samples the peak RSS, PSS and USS of each worker of this process until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[int, dict[str, float]] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for pid in worker_pids(os.getpid()):
                sizes = rollup_mb(pid)
                if sizes is not None:
                    peak = self.peaks.setdefault(pid, dict(sizes))
                    peak.update({name: max(peak[name], value) for name, value in sizes.items()})
            self.halt.wait(SAMPLE_SECONDS)


def run(mode: str, npz: Path, folder: Path, trials: int, epochs: int) -> dict[str, Any]:
    """One search with 2 workers, `mode` "own" or "shared"; the peaks of each worker and its trials' attributes."""
    from archsearch import SearchConfig, join_study, run_search
    from archsearch.controller import open_search_study
    from archsearch.storage import keys

    url = f"sqlite:///{folder}/{mode}.db"
    config = SearchConfig.from_dict(
        {
            "study": {"name": mode, "storage": url, "n_trials": trials, "seed": 0},
            "data": {"path": str(npz)},
            "train": {"epochs": epochs, "patience": epochs},
        }
    )
    sampler = WorkerSampler()
    started = time.perf_counter()
    sampler.start()
    try:
        if mode == "shared":
            study = run_search(config, workers=2)
        else:
            open_search_study(config)
            study = join_study(url, mode, workers=2)
    finally:
        sampler.halt.set()
        sampler.join()
    finished = [
        t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and keys.PEAK_RSS_MB in t.user_attrs
    ]
    stored: dict[str, dict[str, float]] = {}
    for trial in finished:
        per_worker = stored.setdefault(trial.user_attrs[keys.WORKER], {"peak_rss_mb": 0.0, "pss_mb": 0.0})
        for key in per_worker:
            per_worker[key] = max(per_worker[key], trial.user_attrs.get(key, 0.0))
    return {
        "mode": mode,
        "seconds": round(time.perf_counter() - started, 1),
        "finished_trials": len(finished),
        "sampled": [{name: round(v, 1) for name, v in peak.items()} for peak in sampler.peaks.values()],
        "stored": list(stored.values()),
    }


def summarize(records: list[dict[str, Any]]) -> None:
    """Mean and range per mode of each worker's peaks, over every worker of every run."""
    for mode in ("own", "shared"):
        workers = [w for r in records if r["mode"] == mode for w in r["sampled"]]
        stored = [w for r in records if r["mode"] == mode for w in r["stored"]]
        if not workers:
            continue
        parts = [
            f"{name} {statistics.mean(w[name] for w in workers):.0f} "
            f"({min(w[name] for w in workers):.0f}-{max(w[name] for w in workers):.0f})"
            for name in ("hwm", "rss", "pss", "uss")
        ]
        parts += [f"stored {key} max {max(w[key] for w in stored):.0f}" for key in ("peak_rss_mb", "pss_mb") if stored]
        print(f"{mode}: n = {len(workers)} workers, peak MB: " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=4000, help="the issue's larger case: 50000 x 2048, 1000 classes")
    parser.add_argument("--features", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    x, y = synthetic(args.rows, args.features, args.classes)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "vectors.npz"
        np.savez(npz, X=x, y=y)
        for repeat in range(args.repeats):
            for mode in ("own", "shared"):
                folder = Path(tmp) / f"{mode}-{repeat}"
                folder.mkdir()
                record = {"repeat": repeat, "trials": args.trials, "epochs": args.epochs, "shape": list(x.shape)}
                record["classes"] = args.classes
                record.update(run(mode, npz, folder, args.trials, args.epochs))
                print_and_append(record, args.out)
                records.append(record)
    summarize(records)


if __name__ == "__main__":
    main()
