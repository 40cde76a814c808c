"""Wall time of one `archsearch sensitivity` analysis on the single and on the fused engine, side by side.

The sensitivity analysis trains R seeds x N neighbours of one centre: runs of nearly one shape, which
the fused engine (issue #11) steps together. Both engines analyse a copy of the same searched study (a
teacher dataset, one hidden layer, no dropout, so the runs agree to 1e-4 between engines and only the
time differs); the searches themselves are not timed. One worker process per engine, one torch thread.

Usage:
    python benchmarks/sensitivity_engines.py                 # centre of 64 units, 10 seeds, steps 1 and 0.25
    python benchmarks/sensitivity_engines.py --repeats 20 --slots 32
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _common import machine_summary, markdown_table, print_machine

from archsearch.config import SearchConfig
from archsearch.controller import run_search
from archsearch.sensitivity import run_sensitivity

SPACE = {
    "layers": [1, 1],
    "width": [8, 256],
    "dropout": [0.0, 0.0],
    "activation": ["relu"],
    "lr": [0.003, 0.003],
    "weight_decay": [0.0, 0.0],
    "batch_size": [128],
    "optimizer": ["adam"],
    "baselines": [[64]],
    "recipe_baseline": False,
    "embedding": ["none"],  # the engines are compared on what both train
}


def _config(folder: Path, engine: str, slots: int, epochs: int) -> SearchConfig:
    return SearchConfig.from_dict(
        {
            "study": {"name": "bench", "storage": f"sqlite:///{folder}/bench.db", "n_trials": 2, "pruner": "none"},
            "data": {"dataset": "teacher", "teacher": {"rows": 5000, "features": 20, "classes": 4, "widths": [32]}},
            "space": SPACE,
            "train": {"epochs": epochs, "patience": epochs, "engine": engine, "slots": slots, "num_threads": 1},
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="seeds per architecture (default 10)")
    parser.add_argument("--slots", type=int, default=16, help="slots of the fused worker (default 16)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20)")
    args = parser.parse_args(argv)
    print_machine(machine_summary())
    rows, seconds = [], {}
    for engine in ("single", "fused"):
        with tempfile.TemporaryDirectory(prefix="sens-bench-") as tmp:
            folder = Path(tmp)
            config = _config(folder, engine, args.slots, args.epochs)
            run_search(config, workers=1, log_dir=folder / "logs")
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = run_sensitivity(
                    config.study.storage, "bench", trial=1, repeats=args.repeats, steps=(1, 0.25), workers=1
                )
            seconds[engine] = time.perf_counter() - started
            runs = sum(1 for _ in result.centres[0].neighbours) + 1
            effects = {n.group: round(n.effect.mean, 4) for n in result.centres[0].neighbours}
            rows.append(
                [engine, runs * args.repeats, f"{seconds[engine]:.1f}", f"{seconds['single'] / seconds[engine]:.2f}x"]
            )
            print(f"  {engine}: {seconds[engine]:.1f} s, effects {effects}", file=sys.stderr, flush=True)
    print(markdown_table(["engine", "runs", "wall s (analysis only)", "speed vs single"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
