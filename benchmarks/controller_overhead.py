"""What archsearch's controller costs per trial, next to bare Optuna ask/tell on the same storage.

The trainer is replaced by a no-op (`archsearch.trainers.train_mlp` monkeypatched to return a
TrainResult at once), so what is left is archsearch's own bookkeeping: the worker loop, the trial claim,
the architecture and metric user attributes, the weights artifact, heartbeats and callbacks. archsearch
runs in-process (`run_search(config, workers=1)`); the bare loop asks a trial, samples the same space with
the same sampler, and tells a value. Both get the same value for the same parameters, so the sampler
sees the same history.

Per-trial time is the interval between consecutive trials reaching the trainer (the whole cycle); the
median and 95th percentile are over all trials of a run. Each (size, storage) runs both contenders in
fresh processes, alternating who goes first between repeats.

Usage:
    python benchmarks/controller_overhead.py                     # 100 and 1,000 trials, SQLite and PostgreSQL
    python benchmarks/controller_overhead.py --with-5000         # adds 5,000 trials
    python benchmarks/controller_overhead.py --trials 200 --storages sqlite --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import ChildFailed, emit, machine_summary, markdown_table, percentile, print_machine, run_child

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CONTENDERS = ("bare", "archsearch")
TARGET_RATIO = 1.2


def _config(storage: str, name: str, trials: int, sampler: str, artifacts: Path):
    from archsearch import SearchConfig, StudyConfig, TrainConfig

    # patience None and one epoch: the no-op trainer ignores them, but they keep the config plain.
    return SearchConfig(
        study=StudyConfig(
            name=name, storage=storage, n_trials=trials, sampler=sampler, seed=0, artifacts=str(artifacts)
        ),
        train=TrainConfig(epochs=1, patience=None, device="cpu", num_threads=1),
    )


def _value(lr: float, widths: tuple[int, ...]) -> float:
    """A made-up accuracy with a smooth optimum, so that TPE models something and both loops see the same."""
    return 1.0 - abs(math.log10(lr) + 2.5) / 10 - 0.01 * abs(len(widths) - 2)


def _run_bare(config, timestamps: list[float]) -> None:
    import optuna

    from archsearch.samplers import make_sampler

    study = optuna.create_study(
        study_name=config.study.name, storage=config.study.storage, direction="maximize", sampler=make_sampler(config)
    )
    for _ in range(config.study.trial_total):
        trial = study.ask()
        candidate = config.space.sample(trial)
        timestamps.append(time.perf_counter())
        study.tell(trial, _value(candidate.hyperparameters.lr, candidate.architecture.widths))


def _run_archsearch(config, timestamps: list[float]) -> None:
    import archsearch.trainers
    from archsearch.controller import run_search
    from archsearch.trainers import TrainResult

    def no_op_trainer(widths, dropouts, activation, data, settings, report=None) -> TrainResult:
        timestamps.append(time.perf_counter())
        value = _value(settings.lr, tuple(widths))
        metrics = {
            f"{split}_{name}": value
            for split in ("train", "val", "test")
            for name in ("accuracy", "balanced_accuracy", "log_loss")
        }
        return TrainResult(
            status="completed",
            reason=None,
            epochs_run=1,
            best_epoch=1,
            best_value=value,
            history=[value],
            metrics=metrics,
            train_seconds=0.0,
            device="cpu",
            n_params=0,
            state_dict={},
        )

    archsearch.trainers.train_mlp = no_op_trainer
    run_search(config, workers=1)


def _child(args: argparse.Namespace) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    workdir = Path(args.workdir)
    storage = f"sqlite:///{workdir / 'bench.db'}" if args.storage == "sqlite" else POSTGRES_URL
    config = _config(storage, args.study_name, args.trials, args.sampler, workdir / "artifacts")
    run = _run_bare if args.child == "bare" else _run_archsearch
    timestamps: list[float] = []
    profile = cProfile.Profile() if args.profile_out else None
    started, cpu_started = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    try:
        run(config, timestamps)
    finally:
        if profile:
            profile.disable()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if args.storage == "postgresql":
            optuna.delete_study(study_name=args.study_name, storage=storage)
    if profile:
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(45)
        Path(args.profile_out).write_text(text.getvalue(), encoding="utf-8")
    intervals_ms = [1000 * (b - a) for a, b in zip(timestamps, timestamps[1:])]
    emit(
        {
            "trials": len(timestamps),
            "wall_s": wall,
            "median_ms": statistics.median(intervals_ms),
            "p95_ms": percentile(intervals_ms, 95),
            "mean_ms": statistics.fmean(intervals_ms),
            # This process's CPU time per trial: less sensitive to other processes on a shared machine than wall
            # time, but blind to the database server's own work (PostgreSQL runs in its own processes), and it
            # includes one-off imports (torch, for archsearch), so it means little below ~1,000 trials.
            "cpu_ms_per_trial": 1000 * cpu / max(1, len(timestamps)),
            # The last tenth shows how the cost grows with the study's size.
            "last_tenth_median_ms": statistics.median(intervals_ms[-max(1, len(intervals_ms) // 10) :]),
        }
    )


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers at POSTGRES_URL, else the reason it does not."""
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as e:  # any driver or connection error means "no server here"
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def _measure(
    args: argparse.Namespace, contender: str, storage: str, trials: int, profile_out: str | None
) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix="archsearch-overhead-")
    argv = [
        str(Path(__file__).resolve()),
        "--child",
        contender,
        "--storage",
        storage,
        "--trials-one",
        str(trials),
        "--sampler",
        args.sampler,
        "--workdir",
        workdir,
        "--study-name",
        f"overhead-{uuid.uuid4().hex[:10]}",
    ]
    if profile_out:
        argv += ["--profile-out", profile_out]
    try:
        child = run_child(argv, timeout=args.child_timeout)
        return {"contender": contender, "storage": storage, "n": trials, **child.payload}
    except ChildFailed as e:
        print(f"  {contender} on {storage} at {trials} trials failed: {e}", file=sys.stderr)
        return {"contender": contender, "storage": storage, "n": trials, "error": str(e)[:500]}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 1000], help="study sizes (default: 100 1000)")
    parser.add_argument("--with-5000", action="store_true", help="also measure 5,000 trials")
    parser.add_argument("--storages", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--sampler", default="tpe", choices=("tpe", "random"), help="sampler of both loops (default: tpe)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each contender per (size, storage); order alternates"
    )
    parser.add_argument("--profile", action="store_true", help="also profile archsearch at the largest size (cProfile)")
    parser.add_argument("--child-timeout", type=float, default=1800, help="seconds before one run is killed")
    parser.add_argument("--json", help="also write the runs to this JSON file")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    for hidden in ("--storage", "--workdir", "--study-name", "--profile-out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--trials-one", dest="trials_one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.trials = args.trials_one
        _child(args)
        return 0

    machine = machine_summary()
    print_machine(machine)
    sizes = sorted(set(args.trials + ([5000] if args.with_5000 else [])))
    storages = args.storages.split(",")
    if "postgresql" in storages:
        reason = postgres_reachable()
        if reason:
            print(f"PostgreSQL at {POSTGRES_URL} is not reachable ({reason}); skipping it.")
            storages.remove("postgresql")
    print(f"sampler {args.sampler}; no-op trainer; archsearch in-process (workers=1)\n")
    runs: list[dict[str, Any]] = []
    for trials in sizes:
        for storage in storages:
            for repeat in range(args.repeats):
                order = CONTENDERS if repeat % 2 == 0 else CONTENDERS[::-1]
                for contender in order:
                    run = _measure(args, contender, storage, trials, None)
                    runs.append(run)
                    if "error" not in run:
                        print(
                            f"  {trials:>5} trials {storage:<10} {contender:<10} median {run['median_ms']:7.2f} ms  "
                            f"p95 {run['p95_ms']:7.2f} ms  cpu {run['cpu_ms_per_trial']:7.2f} ms/trial  wall {run['wall_s']:6.1f} s",
                            file=sys.stderr,
                            flush=True,
                        )
    rows = []
    for trials in sizes:
        for storage in storages:
            got = {
                c: [
                    r
                    for r in runs
                    if r["n"] == trials and r["storage"] == storage and r["contender"] == c and "error" not in r
                ]
                for c in CONTENDERS
            }
            if not all(got.values()):
                continue
            med = {c: statistics.fmean(r["median_ms"] for r in got[c]) for c in CONTENDERS}
            p95 = {c: statistics.fmean(r["p95_ms"] for r in got[c]) for c in CONTENDERS}
            tail = {c: statistics.fmean(r["last_tenth_median_ms"] for r in got[c]) for c in CONTENDERS}
            cpu = {c: statistics.fmean(r["cpu_ms_per_trial"] for r in got[c]) for c in CONTENDERS}
            ratio = med["archsearch"] / med["bare"]
            rows.append(
                [
                    trials,
                    storage,
                    f"{med['bare']:.2f}",
                    f"{p95['bare']:.2f}",
                    f"{med['archsearch']:.2f}",
                    f"{p95['archsearch']:.2f}",
                    f"{ratio:.2f}x",
                    f"{tail['archsearch'] / tail['bare']:.2f}x",
                    f"{cpu['bare']:.1f} / {cpu['archsearch']:.1f}",
                ]
            )
            if trials == 1000:
                verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
                print(f"- {storage}, 1,000 trials: archsearch/bare {ratio:.2f}x, target <= {TARGET_RATIO}x: {verdict}")
    print(
        markdown_table(
            [
                "trials",
                "storage",
                "bare median ms",
                "bare p95 ms",
                "archsearch median ms",
                "archsearch p95 ms",
                "ratio (median)",
                "ratio (last 10% of trials)",
                "client CPU ms/trial (bare / archsearch)",
            ],
            rows,
        )
    )
    if args.profile and storages:
        out = Path(tempfile.mkdtemp(prefix="archsearch-profile-")) / "profile.txt"
        _measure(args, "archsearch", storages[0], sizes[-1], str(out))
        if out.exists():
            print(f"\ncProfile of archsearch, {sizes[-1]} trials on {storages[0]}:\n")
            print(out.read_text(encoding="utf-8"))
        shutil.rmtree(out.parent, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "sampler": args.sampler, "runs": runs}, indent=2), encoding="utf-8"
        )
    return 0 if all("error" not in r for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
