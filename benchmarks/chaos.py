"""Chaos run: a pool search on PostgreSQL while workers, the controller and the database connections are killed.

    python benchmarks/chaos.py                       # 3 workers, 30 trials, 10 faults (~4 min on 2 cores)
    python benchmarks/chaos.py --workers 4 --n-trials 60 --worker-kills 5 --controller-kills 2 --backend-kills 5

Faults come in a shuffled order, one every `--pause` seconds (uniform between its two bounds): SIGKILL of
a worker that is training a trial (at most workers - 1 per controller, so the pool never runs empty),
SIGKILL of the controller (its workers must die with it; the same command is then run again), and
`pg_terminate_backend` of every connection of the search (its URL tags them with an `application_name`,
so that other users of the same database are left alone). The search is started with `nice` so that
the machine's other users keep their share.

Figures, read back from the study at the end:
- lost: trials that failed for a fault and whose parameters never finished, by a retry (target 0),
  apart from those killed more than `max_retry` + 1 times, which Optuna's retry gives up by design;
- duplicated: originals finished more than once through their retries (target 0);
- left RUNNING / WAITING (target 0), and finished trials against n_trials (target equal);
- recovery, per fault: killed worker: seconds until its trial is failed (and its retry queued), and until
  the retry starts; controller: seconds until the killed trials are failed by the rerun; terminated
  connections: seconds until every trial running at that moment has written again (a heartbeat or its end);
- orphan lifetime: seconds from the controller's SIGKILL until none of its workers is alive.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState

from archsearch.storage import make_storage

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = os.environ.get("ARCHSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _config(folder: Path, url: str, name: str, args: argparse.Namespace) -> Path:
    path = folder / "chaos.toml"
    path.write_text(
        f'[study]\nname = "{name}"\nstorage = "{url}"\nn_trials = {args.n_trials}\nseed = {args.seed}\n'
        f'heartbeat_interval = {args.heartbeat}\ngrace_period = {args.grace}\nmax_retry = {args.max_retry}\nartifacts = "{folder / "artifacts"}"\n'
        '[data]\ndataset = "digits"\n[space]\nlayers = [1, 2]\nwidth = [16, 128]\nbatch_size = [64]\n'
        f"[train]\nepochs = {args.epochs}\npatience = {args.epochs}\n",
        encoding="utf-8",
    )
    return path


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _terminate_backends(url: str, tag: str) -> int:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :tag AND pid <> pg_backend_pid()"
    with engine.connect() as connection:
        killed = connection.execute(sqlalchemy.text(query), {"tag": tag}).scalar()
    engine.dispose()
    return killed


def _reconnected_seconds(url: str, study_name: str, limit: float = 60.0) -> float | None:
    """Seconds until every trial RUNNING now has a heartbeat newer than now, or has ended (database clock)."""
    engine = sqlalchemy.create_engine(url)
    running_query = sqlalchemy.text(
        "SELECT t.trial_id FROM trials t JOIN studies s USING (study_id) WHERE s.study_name = :name AND t.state = 'RUNNING'"
    )
    pending_query = sqlalchemy.text(
        "SELECT count(*) FROM trials t LEFT JOIN trial_heartbeats h USING (trial_id) WHERE t.trial_id IN :ids "
        "AND t.state = 'RUNNING' AND (h.heartbeat IS NULL OR h.heartbeat <= :since)"
    ).bindparams(sqlalchemy.bindparam("ids", expanding=True))
    started = time.monotonic()
    try:
        with engine.connect() as connection:
            since = connection.execute(sqlalchemy.text("SELECT now()")).scalar().replace(tzinfo=None)
            ids = [row[0] for row in connection.execute(running_query, {"name": study_name})]
        if not ids:
            return None
        while time.monotonic() - started < limit:
            with engine.connect() as connection:
                if connection.execute(pending_query, {"ids": ids, "since": since}).scalar() == 0:
                    return time.monotonic() - started
            time.sleep(0.1)
        return None
    finally:
        engine.dispose()


def _running_workers(study: optuna.Study) -> dict[int, int]:
    """pid -> trial number of the trials being trained right now."""
    running = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        label = trial.user_attrs.get("worker", "")
        if ":" in label and "widths" in trial.user_attrs:
            running[int(label.split(":")[1].split("/")[0])] = trial.number
    return running


def run(args: argparse.Namespace) -> dict:
    url, name = args.url, f"chaos-{uuid.uuid4().hex[:8]}"
    rng = random.Random(args.seed)
    faults = ["worker"] * args.worker_kills + ["controller"] * args.controller_kills + ["backends"] * args.backend_kills
    rng.shuffle(faults)
    folder = Path(tempfile.mkdtemp(prefix="archsearch-chaos-"))
    tagged = (
        sqlalchemy.engine.make_url(url)
        .update_query_dict({"application_name": name})
        .render_as_string(hide_password=False)
    )
    config = _config(folder, tagged, name, args)
    command = [
        "nice",
        "-n",
        "10",
        sys.executable,
        "-m",
        "archsearch.cli",
        "search",
        str(config),
        "--workers",
        str(args.workers),
        "--quiet",
        "--log-dir",
        str(folder / "logs"),
    ]
    events: list[dict] = []
    orphan_seconds: list[float] = []
    exits: list[int] = []
    started = time.monotonic()
    controller = subprocess.Popen(
        command, cwd=folder, stdout=subprocess.DEVNULL, stderr=open(folder / "controller.err", "a")
    )
    worker_kills_this_run = 0
    storage = None
    try:
        while True:
            pause_until = time.monotonic() + rng.uniform(*args.pause)
            while time.monotonic() < pause_until and controller.poll() is None:
                time.sleep(0.2)
            if controller.poll() is not None:
                exits.append(controller.returncode)
                if controller.returncode == 0:
                    break
                # An unexpected end is a finding; the rerun shows whether the study still completes.
                controller = subprocess.Popen(
                    command, cwd=folder, stdout=subprocess.DEVNULL, stderr=open(folder / "controller.err", "a")
                )
                worker_kills_this_run = 0
                continue
            if not faults:
                continue
            if storage is None:
                try:
                    storage = make_storage(url)  # retrying: its own connections are terminated too
                    study = optuna.load_study(study_name=name, storage=storage)
                except KeyError:
                    storage = None
                    continue
            kind = faults[0]
            if kind == "worker":
                if worker_kills_this_run >= args.workers - 1:
                    # This pool has one worker left: another fault first, or none if only worker kills remain.
                    skipped = faults.pop(0)
                    if set(faults) - {"worker"}:
                        faults.append(skipped)
                    continue
                running = _running_workers(study)
                if not running:
                    continue
            when = datetime.datetime.now()
            if kind == "worker":
                pid, number = rng.choice(sorted(running.items()))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it finished the study and exited meanwhile
                    continue
                faults.pop(0)
                worker_kills_this_run += 1
                events.append({"kind": kind, "at": when.isoformat(), "trial": number})
            elif kind == "controller":
                faults.pop(0)
                workers = _children(controller.pid)
                controller.send_signal(signal.SIGKILL)
                controller.wait()
                killed_at = time.monotonic()
                while any(_alive(pid) for pid in workers) and time.monotonic() - killed_at < 60:
                    time.sleep(0.05)
                orphan_seconds.append(time.monotonic() - killed_at)
                events.append({"kind": kind, "at": when.isoformat(), "workers": len(workers)})
                controller = subprocess.Popen(
                    command, cwd=folder, stdout=subprocess.DEVNULL, stderr=open(folder / "controller.err", "a")
                )
                worker_kills_this_run = 0
            else:
                faults.pop(0)
                connections = _terminate_backends(url, name)
                events.append(
                    {
                        "kind": kind,
                        "at": when.isoformat(),
                        "connections": connections,
                        "reconnected_s": _reconnected_seconds(url, name),
                    }
                )
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
    wall = time.monotonic() - started
    return _figures(url, name, events, orphan_seconds, exits, wall, args, folder)


def _figures(
    url: str,
    name: str,
    events: list[dict],
    orphan_seconds: list[float],
    exits: list[int],
    wall: float,
    args: argparse.Namespace,
    folder: Path,
) -> dict:
    study = optuna.load_study(study_name=name, storage=make_storage(url))
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}

    def original(trial: optuna.trial.FrozenTrial) -> int:
        return trial.system_attrs.get("failed_trial", trial.number)

    finished_originals = [original(t) for t in trials if t.state in FINISHED]
    failed = [t for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get("not_run")]
    lost = sorted({original(t) for t in failed} - set(finished_originals))
    reasons: dict[str, int] = {}
    for trial in failed:
        reason = trial.user_attrs.get("fail_reason", "(none)")
        key = reason.split(" (pid")[0].split(" for over")[0].split("(")[0].strip()
        reasons[key] = reasons.get(key, 0) + 1
    recovery: dict[str, list[float]] = {
        "worker_failed": [],
        "worker_retry_started": [],
        "controller_failed": [],
        "backends_reconnected": [],
    }
    for event in events:
        at = datetime.datetime.fromisoformat(event["at"])
        if event["kind"] == "worker":
            killed = by_number[event["trial"]]
            if killed.state != TrialState.FAIL:  # the worker had moved on to a trial not yet recorded
                continue
            if killed.datetime_complete:
                recovery["worker_failed"].append((killed.datetime_complete - at).total_seconds())
            retries = [
                t.datetime_start
                for t in trials
                if t.system_attrs.get("retry_history", [None])[-1] == killed.number and t.datetime_start
            ]
            if retries:
                recovery["worker_retry_started"].append((min(retries) - at).total_seconds())
        elif event["kind"] == "controller":
            ends = [
                t.datetime_complete
                for t in trials
                if t.state == TrialState.FAIL and t.datetime_start < at < t.datetime_complete
            ]
            if ends:
                recovery["controller_failed"].append((max(ends) - at).total_seconds())
        elif event.get("reconnected_s") is not None:
            recovery["backends_reconnected"].append(event["reconnected_s"])
    # Optuna's retry gives a trial up after max_retry retries; those are counted apart from losses.
    chain_lengths = {}
    for trial in failed:
        chain_lengths[original(trial)] = max(
            chain_lengths.get(original(trial), 0), len(trial.system_attrs.get("retry_history", [])) + 1
        )
    given_up = [number for number in lost if chain_lengths.get(number, 0) > args.max_retry]
    lost = [number for number in lost if number not in given_up]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end",
        "workers": args.workers,
        "n_trials": args.n_trials,
        "epochs": args.epochs,
        "heartbeat_interval": args.heartbeat,
        "grace_period": args.grace,
        "faults": {kind: sum(e["kind"] == kind for e in events) for kind in ("worker", "controller", "backends")},
        "backend_connections_terminated": sum(e.get("connections", 0) for e in events),
        "controller_exit_codes": exits,
        "finished": sum(t.state in FINISHED for t in trials),
        "lost": len(lost),
        "given_up_after_max_retry": len(given_up),
        "duplicated": len(finished_originals) - len(set(finished_originals)),
        "left_running": sum(t.state == TrialState.RUNNING for t in trials),
        "left_waiting": sum(t.state == TrialState.WAITING for t in trials),
        "failed_by_reason": reasons,
        "failed_without_reason": sum(not t.user_attrs.get("fail_reason") for t in trials if t.state == TrialState.FAIL),
        "surplus_claims": sum(bool(t.user_attrs.get("not_run")) for t in trials),
        "recovery_seconds": {
            k: {"n": len(v), "median": round(statistics.median(v), 1), "max": round(max(v), 1)}
            for k, v in recovery.items()
            if v
        },
        "events": events,
        "orphan_lifetime_seconds": [round(s, 2) for s in orphan_seconds],
        "controller_stderr_lines": len((folder / "controller.err").read_text().splitlines()),
        "lost_trials": lost,
        "wall_seconds": round(wall, 1),
        "study": name,
        "folder": str(folder),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (default: the test suite's)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--worker-kills", type=int, default=4)
    parser.add_argument("--controller-kills", type=int, default=2)
    parser.add_argument("--backend-kills", type=int, default=4)
    parser.add_argument("--pause", type=float, nargs=2, default=(6.0, 14.0), help="seconds between faults (uniform)")
    parser.add_argument("--heartbeat", type=int, default=2, help="[study] heartbeat_interval")
    parser.add_argument("--grace", type=int, default=8, help="[study] grace_period")
    parser.add_argument("--max-retry", type=int, default=2, help="[study] max_retry")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the study in the database")
    args = parser.parse_args()
    figures = run(args)
    print(json.dumps(figures, indent=2))
    if not args.keep:
        optuna.delete_study(study_name=figures["study"], storage=args.url)
    clean = figures["lost"] == figures["duplicated"] == figures["left_running"] == figures["left_waiting"] == 0
    return 0 if clean and figures["finished"] == args.n_trials else 1


if __name__ == "__main__":
    sys.exit(main())
