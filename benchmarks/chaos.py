"""Chaos run: a pool search on PostgreSQL or MariaDB while workers, the controller and the connections are hit.

    python benchmarks/chaos.py                                   # PostgreSQL, 3 workers, 11 faults
    python benchmarks/chaos.py --url mysql+pymysql://root@127.0.0.1:3306/test
    python benchmarks/chaos.py --worker-kills 5 --controller-kills 2 --interrupts 2 --backend-kills 5

The run creates a database of its own on the server of `--url` (dropped at the end unless `--keep`), so the
search starts on an empty schema, and its connections are told apart from everyone else's by their database.
Faults come in a shuffled order, spread over the search by its progress: fault k of F fires once k/(F + 1) of
the trials have finished (and at least `--pause` seconds after the previous fault), so every planned fault
lands while the search still runs, however fast the trials are. `--n-trials` defaults to 5 per fault.

- worker: SIGKILL of a worker that is training a trial (at most workers - 1 per controller, so the pool
  never runs empty);
- controller: SIGKILL of the controller (its workers must die with it), then the same command again;
- interrupt: SIGTERM to the controller, which must stop its workers and exit 130, then the same command;
- backends: every connection to the run's database is terminated (`pg_terminate_backend`, MariaDB `KILL`).

A fault *fired* when it was delivered (a signal sent, at least one connection terminated). It *survived*:
worker, controller: every trial it killed ended FAIL with a reason and its parameters later finished (by a
retry); the controller's workers died within 60 s; interrupt: the controller exited 130 with no trial left
RUNNING, and every trial it stopped finished later (put back as waiting); backends: every trial running at
that moment wrote again (a heartbeat or its end) within 60 s, and no trial failed for the database.

The run passes (exit 0) only when at least `--min-fired` of the planned faults fired (default 1.0: all of
them), every fired fault survived, the controller never stopped by itself before the end, no trial was lost (a failed trial whose parameters never finished),
none was duplicated, nothing was left RUNNING or WAITING, and exactly n_trials trials finished. The JSON it
prints holds every figure and the verdict's reasons.
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
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState

from archsearch.storage import backend_of, make_storage, mask_url

DEFAULT_URL = os.environ.get("ARCHSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
KINDS = ("worker", "controller", "interrupt", "backends")
ORPHAN_LIMIT_S = 60.0


class ScratchDatabase:
    """A database of the run's own on the server of `url`: created empty, its connections terminated on demand."""

    def __init__(self, url: str) -> None:
        self.backend = backend_of(url)
        self.name = f"archsearch_chaos_{uuid.uuid4().hex[:8]}"
        self.admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
        with self.admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {self.name}"))
        self.url = sqlalchemy.engine.make_url(url).set(database=self.name).render_as_string(hide_password=False)
        self.engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)  # this script's reads

    def terminate_connections(self) -> int:
        """Terminate every connection to the run's database (the search's and this script's); returns how many."""
        with self.admin.connect() as connection:
            if self.backend == "postgresql":
                query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :db"
                return int(connection.execute(sqlalchemy.text(query), {"db": self.name}).scalar())
            query = "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()"
            ids = [row[0] for row in connection.execute(sqlalchemy.text(query), {"db": self.name})]
            killed = 0
            for connection_id in ids:
                try:
                    connection.execute(sqlalchemy.text(f"KILL CONNECTION {int(connection_id)}"))
                    killed += 1
                except sqlalchemy.exc.OperationalError:  # it closed meanwhile
                    pass
            return killed

    def drop(self) -> None:
        self.engine.dispose()
        force = " WITH (FORCE)" if self.backend == "postgresql" else ""
        with self.admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {self.name}{force}"))
        self.admin.dispose()


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


def _reconnected_seconds(url: str, study_name: str, running: list[int], limit: float = 60.0) -> float | None:
    """Seconds until every trial in `running` (ids) has a heartbeat newer than now, or has ended (database clock)."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    pending_query = sqlalchemy.text(
        "SELECT count(*) FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
        "WHERE t.trial_id IN :ids AND t.state = 'RUNNING' AND (h.heartbeat IS NULL OR h.heartbeat <= :since)"
    ).bindparams(sqlalchemy.bindparam("ids", expanding=True))
    started = time.monotonic()
    try:
        since = None
        while time.monotonic() - started < limit:
            try:
                with engine.connect() as connection:
                    if since is None:
                        since = connection.execute(sqlalchemy.text("SELECT CURRENT_TIMESTAMP")).scalar()
                        since = since.replace(tzinfo=None)
                    if connection.execute(pending_query, {"ids": running, "since": since}).scalar() == 0:
                        return time.monotonic() - started
            except sqlalchemy.exc.OperationalError:  # the server is still dropping connections
                pass
            time.sleep(0.1)
        return None
    finally:
        engine.dispose()


@dataclass
class Run:
    """What the run did: the faults it fired, with what was running at that moment, and the controller's exits."""

    events: list[dict] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)
    not_fired: list[str] = field(default_factory=list)


class Chaos:
    """The search under faults: starts the controller, fires the planned faults by progress, reruns it."""

    def __init__(self, args: argparse.Namespace, database: ScratchDatabase, folder: Path, name: str) -> None:
        self.args, self.database, self.folder, self.name = args, database, folder, name
        config = _config(folder, database.url, name, args)
        self.command = ["nice", "-n", "10", sys.executable, "-m", "archsearch.cli", "search", str(config)]
        self.command += ["--workers", str(args.workers), "--quiet", "--log-dir", str(folder / "logs")]
        self.rng = random.Random(args.seed)
        self.run = Run()
        self.study: optuna.Study | None = None
        self.worker_kills_this_run = 0
        self.controller = self._start()

    def _start(self) -> subprocess.Popen:
        self.worker_kills_this_run = 0
        with open(self.folder / "controller.err", "a") as err:
            return subprocess.Popen(self.command, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=err)

    def _study(self) -> optuna.Study | None:
        """The study once the search has created it (this script never creates the schema itself)."""
        if self.study is None:
            try:
                with self.database.engine.connect() as connection:
                    query = sqlalchemy.text("SELECT count(*) FROM studies WHERE study_name = :name")
                    if not connection.execute(query, {"name": self.name}).scalar():
                        return None
            except sqlalchemy.exc.DBAPIError:  # no tables yet, or a terminated connection
                return None
            self.study = optuna.load_study(study_name=self.name, storage=make_storage(self.database.url))
        return self.study

    def _running(self, study: optuna.Study) -> dict[int, int]:
        """trial number -> worker pid of the trials being trained right now."""
        running = {}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            label = trial.user_attrs.get("worker", "")
            if ":" in label and "widths" in trial.user_attrs:
                running[trial.number] = int(label.split(":")[1].split("/")[0])
        return running

    def execute(self, faults: list[str]) -> None:
        """Fire `faults` in order, fault k once k/(F + 1) of the trials finished; rerun the controller until done."""
        thresholds = [round((k + 1) * self.args.n_trials / (len(faults) + 1)) for k in range(len(faults))]
        last_fault = 0.0
        while True:
            time.sleep(0.3)
            if self.controller.poll() is not None:
                self.run.exits.append(self.controller.returncode)
                if self.controller.returncode == 0:
                    break
                self.controller = self._start()  # an unexpected end is a finding; the rerun shows what remains
                continue
            if not faults or time.monotonic() - last_fault < self.args.pause:
                continue
            study = self._study()
            if study is None:
                continue
            finished = sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))
            if finished < thresholds[0]:
                continue
            event = self._fire(faults, study)
            if event is not None:
                thresholds.pop(0)
                event["finished_before"] = finished
                self.run.events.append(event)
                last_fault = time.monotonic()
        self.run.not_fired = faults

    def _fire(self, faults: list[str], study: optuna.Study) -> dict | None:
        """Fire the first fault that can fire now; None if none can.

        Every fault waits for a trial in training, so that it hits one; a worker kill also needs a worker to spare.
        """
        running = self._running(study)
        if not running:
            return None
        for index, kind in enumerate(faults):
            if kind == "worker" and self.worker_kills_this_run >= self.args.workers - 1:
                continue
            at = datetime.datetime.now()
            event = getattr(self, f"_fire_{kind}")(study, running)
            if event is None:
                continue
            faults.pop(index)
            return {"kind": kind, "at": at.isoformat(), "running": sorted(running), **event}
        return None

    def _fire_worker(self, study: optuna.Study, running: dict[int, int]) -> dict | None:
        number, pid = self.rng.choice(sorted(running.items()))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # it finished the study and exited meanwhile
            return None
        self.worker_kills_this_run += 1
        return {"trial": number, "hit": [t for t, p in running.items() if p == pid]}

    def _fire_controller(self, study: optuna.Study, running: dict[int, int]) -> dict | None:
        workers = _children(self.controller.pid)
        self.controller.send_signal(signal.SIGKILL)
        self.controller.wait()
        killed_at = time.monotonic()
        while any(_alive(pid) for pid in workers) and time.monotonic() - killed_at < ORPHAN_LIMIT_S:
            time.sleep(0.05)
        orphans = time.monotonic() - killed_at
        self.controller = self._start()
        return {"workers": len(workers), "orphan_seconds": round(orphans, 2), "hit": sorted(running)}

    def _fire_interrupt(self, study: optuna.Study, running: dict[int, int]) -> dict | None:
        sent = time.monotonic()
        self.controller.send_signal(signal.SIGTERM)
        try:
            code = self.controller.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.controller.kill()
            code = self.controller.wait()
        stopped_s = time.monotonic() - sent
        left_running = sum(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))
        self.controller = self._start()
        return {
            "exit_code": code,
            "stopped_s": round(stopped_s, 2),
            "left_running": left_running,
            "hit": sorted(running),
        }

    def _fire_backends(self, study: optuna.Study, running: dict[int, int]) -> dict | None:
        ids = [t._trial_id for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        connections = self.database.terminate_connections()
        if connections == 0:
            return None  # between two database calls: nothing to cut yet
        reconnected = _reconnected_seconds(self.database.url, self.name, ids) if ids else None
        return {"connections": connections, "reconnected_s": reconnected, "timed": bool(ids)}


def _original(trial: optuna.trial.FrozenTrial) -> int:
    return trial.system_attrs.get("failed_trial", trial.number)


def _survived(event: dict, trials: dict[int, optuna.trial.FrozenTrial], finished_originals: set[int]) -> bool:
    """Whether the search came through this fault whole (see the module docstring)."""
    hit = [trials[n] for n in event.get("hit", []) if n in trials]
    recovered = all(
        t.state in FINISHED
        or (t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") and _original(t) in finished_originals)
        for t in hit
    )
    if event["kind"] == "controller":
        return recovered and event["orphan_seconds"] < ORPHAN_LIMIT_S
    if event["kind"] == "interrupt":
        return recovered and event["exit_code"] == 130 and event["left_running"] == 0
    if event["kind"] == "backends":
        return not event["timed"] or event["reconnected_s"] is not None
    return recovered


def _recovery(events: list[dict], trials: dict[int, optuna.trial.FrozenTrial]) -> dict[str, list[float]]:
    """Seconds from each fault to its recovery, per kind of recovery (see BENCHMARKS.md section 10)."""
    recovery: dict[str, list[float]] = {k: [] for k in ("worker_failed", "worker_retry_started", "controller_orphans")}
    recovery |= {"controller_failed": [], "interrupt_stopped": [], "backends_reconnected": []}
    for event in events:
        at = datetime.datetime.fromisoformat(event["at"])
        if event["kind"] == "worker":
            killed = trials.get(event["trial"])
            if killed is None or killed.state != TrialState.FAIL or killed.datetime_complete is None:
                continue
            recovery["worker_failed"].append((killed.datetime_complete - at).total_seconds())
            starts = [
                t.datetime_start for t in trials.values() if t.system_attrs.get("failed_trial") == _original(killed)
            ]
            starts = [s for s in starts if s is not None and s > at]
            if starts:
                recovery["worker_retry_started"].append((min(starts) - at).total_seconds())
        elif event["kind"] == "controller":
            recovery["controller_orphans"].append(event["orphan_seconds"])
            ends = [trials[n].datetime_complete for n in event["hit"] if trials[n].state == TrialState.FAIL]
            if ends and all(ends):
                recovery["controller_failed"].append((max(ends) - at).total_seconds())
        elif event["kind"] == "interrupt":
            recovery["interrupt_stopped"].append(event["stopped_s"])
        elif event.get("reconnected_s") is not None:
            recovery["backends_reconnected"].append(event["reconnected_s"])
    return recovery


def figures(run: Run, study: optuna.Study, planned: dict[str, int], args: argparse.Namespace) -> dict:
    """Every figure of the run, read back from the study, and the verdict."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    finished_originals = [_original(t) for t in trials.values() if t.state in FINISHED]
    failed = [t for t in trials.values() if t.state == TrialState.FAIL and not t.user_attrs.get("not_run")]
    lost = sorted({_original(t) for t in failed} - set(finished_originals))
    for event in run.events:
        event["survived"] = _survived(event, trials, set(finished_originals))
    recovery = _recovery(run.events, trials)
    result = {
        "planned": planned,
        "fired": {kind: sum(e["kind"] == kind for e in run.events) for kind in KINDS},
        "survived": {kind: sum(e["kind"] == kind and e["survived"] for e in run.events) for kind in KINDS},
        "not_fired": run.not_fired,
        "n_trials": args.n_trials,
        "finished": len(finished_originals),
        "lost": len(lost),
        "lost_trials": lost,
        "duplicated": len(finished_originals) - len(set(finished_originals)),
        "left_running": sum(t.state == TrialState.RUNNING for t in trials.values()),
        "left_waiting": sum(t.state == TrialState.WAITING for t in trials.values()),
        "failed": len(failed),
        "failed_without_reason": sum(not t.user_attrs.get("fail_reason") for t in failed),
        "failed_for_the_database": sum("Database" in str(t.user_attrs.get("fail_reason", "")) for t in failed),
        "controller_exit_codes": run.exits,
        # A controller that ended by itself before the study was done (a worker's error stops the search): an
        # operator would have had to rerun it by hand. The controllers this script killed are not counted.
        "unexpected_exits": [code for code in run.exits if code != 0],
        "recovery_seconds": {
            k: {"n": len(v), "median": round(statistics.median(v), 1), "max": round(max(v), 1)}
            for k, v in recovery.items()
            if v
        },
        "events": run.events,
    }
    result["failures"] = verdict(result, args.min_fired)
    result["passed"] = not result["failures"]
    return result


def verdict(result: dict, min_fired: float) -> list[str]:
    """Why the run fails (empty: it passes): too few faults fired, one not survived, a trial lost or left over.

    >>> ok = {"planned": {"worker": 2}, "fired": {"worker": 2}, "survived": {"worker": 2}, "lost": 0, "duplicated": 0,
    ...       "left_running": 0, "left_waiting": 0, "finished": 10, "n_trials": 10, "failed_for_the_database": 0,
    ...       "unexpected_exits": []}
    >>> verdict(ok, 1.0)
    []
    >>> verdict(ok | {"fired": {"worker": 1}, "survived": {"worker": 1}}, 1.0)
    ['1 of 2 planned faults fired (0.50 < the required share 1.00)']
    """
    planned, fired = sum(result["planned"].values()), sum(result["fired"].values())
    failures = []
    if planned == 0 or fired / planned < min_fired:
        share = fired / planned if planned else 0.0
        failures.append(f"{fired} of {planned} planned faults fired ({share:.2f} < the required share {min_fired:.2f})")
    not_survived = fired - sum(result["survived"].values())
    if not_survived:
        failures.append(f"{not_survived} of {fired} fired faults not survived")
    if result["unexpected_exits"]:
        codes = ", ".join(map(str, result["unexpected_exits"]))
        failures.append(f"the controller stopped by itself {len(result['unexpected_exits'])} times (exit {codes})")
    for key in ("lost", "duplicated", "left_running", "left_waiting", "failed_for_the_database"):
        if result[key]:
            failures.append(f"{key.replace('_', ' ')}: {result[key]}")
    if result["finished"] != result["n_trials"]:
        failures.append(f"{result['finished']} trials finished, not n_trials = {result['n_trials']}")
    return failures


def run(args: argparse.Namespace) -> dict:
    planned = {
        "worker": args.worker_kills,
        "controller": args.controller_kills,
        "interrupt": args.interrupts,
        "backends": args.backend_kills,
    }
    faults = [kind for kind, count in planned.items() for _ in range(count)]
    random.Random(args.seed).shuffle(faults)
    if args.n_trials is None:
        args.n_trials = 5 * max(len(faults), 1)  # room for every fault, spread by progress
    folder = Path(tempfile.mkdtemp(prefix="archsearch-chaos-"))
    name = f"chaos-{uuid.uuid4().hex[:8]}"
    database = ScratchDatabase(args.url)
    started = time.monotonic()
    try:
        chaos = Chaos(args, database, folder, name)
        try:
            chaos.execute(faults)
        finally:
            if chaos.controller.poll() is None:
                chaos.controller.kill()
                chaos.controller.wait()
        study = optuna.load_study(study_name=name, storage=make_storage(database.url))
        result = figures(chaos.run, study, planned, args)
    finally:
        if not args.keep:
            database.drop()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end",
        "database": f"{database.backend} ({mask_url(args.url)}), database {database.name}",
        "workers": args.workers,
        "epochs": args.epochs,
        "heartbeat_interval": args.heartbeat,
        "grace_period": args.grace,
        "max_retry": args.max_retry,
        "wall_seconds": round(time.monotonic() - started, 1),
        "controller_stderr_lines": len((folder / "controller.err").read_text().splitlines()),
        "folder": str(folder),
        **result,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL, help="server URL; the run creates its own database there")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--n-trials", type=int, default=None, help="default: 5 per planned fault")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--worker-kills", type=int, default=4)
    parser.add_argument("--controller-kills", type=int, default=2)
    parser.add_argument("--interrupts", type=int, default=1)
    parser.add_argument("--backend-kills", type=int, default=4)
    parser.add_argument("--pause", type=float, default=3.0, help="least seconds between two faults")
    parser.add_argument("--min-fired", type=float, default=1.0, help="share of the planned faults that must fire")
    parser.add_argument("--heartbeat", type=int, default=2, help="[study] heartbeat_interval")
    parser.add_argument("--grace", type=int, default=8, help="[study] grace_period")
    parser.add_argument("--max-retry", type=int, default=5, help="[study] max_retry")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the run's database")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    fired, planned = sum(result["fired"].values()), sum(result["planned"].values())
    head = "PASS" if result["passed"] else "FAIL: " + "; ".join(result["failures"])
    print(
        f"{head} ({fired} of {planned} planned faults fired, {sum(result['survived'].values())} survived, "
        f"{result['lost']} trials lost, {result['finished']}/{result['n_trials']} finished)",
        file=sys.stderr,
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
