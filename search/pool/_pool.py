"""The local worker pool: spawn one process per slot, show progress, stop them cleanly on a signal."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

import optuna
from optuna.trial import TrialState

from archsearch.pool._placement import WorkerSlot
from archsearch.pool._spawn import WorkerProcess
from archsearch.pool._supervision import RetryStaleTrial, fail_trials_of_dead_worker
from archsearch.storage import keys
from archsearch.pool._worker import ERROR_PREFIX, EXIT_ERROR, EXIT_FAILURE_STREAK, ObjectiveFactory, search_objective

__all__ = ["run_pool", "PoolFailure", "progress_line"]

POLL_SECONDS = 0.25
STOP_GRACE_SECONDS = 30.0


class PoolFailure(RuntimeError):
    """A worker stopped after a streak of failed trials (`streak` is True), or died with an error."""

    def __init__(self, message: str, *, streak: bool = False):
        super().__init__(message)
        self.streak = streak


def progress_line(study: optuna.Study, total: int, metric: str, started: float) -> str:
    """One status line: trials done/pruned/failed overall and per worker, best value so far."""
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    done = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
    per_worker = Counter(_short_label(t.user_attrs.get(keys.WORKER, "?")) for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED))
    finished = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if finished:
        best_trial = max(finished, key=lambda t: t.value) if study.direction == optuna.study.StudyDirection.MAXIMIZE else min(finished, key=lambda t: t.value)
        best = f"best val {metric} {best_trial.value:.4f} (trial {best_trial.number})"
    else:
        best = "no completed trial yet"
    workers = " ".join(f"{w}:{n}" for w, n in sorted(per_worker.items()))
    return (
        f"[archsearch] {done}/{total} trials: {states[TrialState.COMPLETE]} complete, {states[TrialState.PRUNED]} pruned, "
        f"{states[TrialState.FAIL]} failed, {states[TrialState.RUNNING]} running | {best} | {workers} | {time.monotonic() - started:.0f}s"
    )


def _short_label(label: str) -> str:
    """'host:pid/w0' -> 'w0' for this machine's workers, 'host/w0' for another machine's."""
    host, _, rest = label.partition(":")
    slot = rest.rsplit("/", 1)[-1]
    return slot if host == socket.gethostname() else f"{host}/{slot}"


def run_pool(
    url: str,
    study: optuna.Study,
    slots: list[WorkerSlot],
    *,
    total: int,
    metric: str,
    log_dir: Path,
    deadline: float | None = None,
    quiet: bool = True,
    stream: TextIO | None = None,
    max_trials: int | None = None,
    objective_factory: ObjectiveFactory = search_objective,
    retry: RetryStaleTrial | None = None,
) -> None:
    """Run one spawned worker process per slot until they all stop; raise on a failure streak.

    SIGINT/SIGTERM to this process stop the workers: each ends its running trial as FAIL and exits, and
    the interrupt is re-raised here once they are gone, so rerunning the search continues the study.
    The workers ignore SIGINT themselves, so a Ctrl-C at the terminal prints one line, not one
    traceback per worker, and they die with this process (see `archsearch.pool._supervision`). With `retry`,
    the trials of a worker that dies mid-trial are failed and retried at once, not after the grace period.
    """
    stream = stream or sys.stderr
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for slot in slots:
        log_path = log_dir / f"worker-{slot.index}.log"
        # Not multiprocessing: its spawn would run the caller's unguarded script again in every worker.
        process = WorkerProcess(
            f"archsearch-worker-{slot.index}", url=url, study_name=study.study_name, slot=slot, log_path=str(log_path),
            total=total, deadline=deadline, max_trials=max_trials, objective_factory=objective_factory, parent_pid=os.getpid(),
        )
        processes.append(process)

    interrupted: list[int] = []
    previous_handlers = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, frame: object) -> None:
            interrupted.append(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous_handlers[signum] = signal.signal(signum, on_signal)
    started = time.monotonic()
    last_line = ""
    reaped: set[int] = set()

    def reap(process) -> None:
        """Fail and retry the trials a worker left RUNNING when it died (once per worker)."""
        if retry is None or process.pid in reaped or process.exitcode in (None, 0, 130, EXIT_ERROR, EXIT_FAILURE_STREAK):
            return
        reaped.add(process.pid)
        code = process.exitcode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        fail_trials_of_dead_worker(study, retry, process.pid, f"its worker process (pid {process.pid}) {how}")

    try:
        # Started with SIGINT ignored, which they keep (a spawned process inherits ignored signals).
        ignoring = threading.current_thread() is threading.main_thread()
        if ignoring:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for process in processes:
                process.start()
        finally:
            if ignoring:
                signal.signal(signal.SIGINT, on_signal)
        if not quiet:
            stream.write(f"[archsearch] {len(slots)} workers ({', '.join(sorted({s.device for s in slots}))}); logs in {log_dir}\n")
        while any(p.is_alive() for p in processes):
            if interrupted:
                raise KeyboardInterrupt()
            if any(p.exitcode == EXIT_FAILURE_STREAK for p in processes):
                _stop(processes)
                raise PoolFailure(_last_failure(study), streak=True)
            broken = [p for p in processes if p.exitcode == EXIT_ERROR]
            if broken:
                _stop(processes)
                raise PoolFailure(_worker_error(broken[0], log_dir))
            for process in processes:
                reap(process)
            if not quiet:
                line = progress_line(study, total, metric, started)
                news = line.rsplit(" | ", 1)[0]  # the elapsed time alone is no news
                if news != last_line:
                    stream.write(line + "\n")
                    stream.flush()
                    last_line = news
            time.sleep(POLL_SECONDS)
        for process in processes:
            reap(process)
        if interrupted:
            raise KeyboardInterrupt()
        if any(p.exitcode == EXIT_FAILURE_STREAK for p in processes):
            raise PoolFailure(_last_failure(study), streak=True)
        broken = [p for p in processes if p.exitcode == EXIT_ERROR]
        if broken:
            raise PoolFailure(_worker_error(broken[0], log_dir))
        crashed = [p for p in processes if p.exitcode != 0]
        if crashed:
            codes = ", ".join(f"{p.name} exited {p.exitcode}" for p in crashed)
            if len(crashed) == len(processes):
                raise PoolFailure(f"every worker died ({codes}); see the logs in {log_dir}")
            # Killed workers' trials are retried by the others; say so, but the study is complete.
            stream.write(f"[archsearch] warning: {codes}; see {log_dir}\n")
    finally:
        _stop(processes)
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        # Workers that had to be killed (a trial stuck past the grace) leave their trial RUNNING.
        for process in processes:
            reap(process)


def _stop(processes: list) -> None:
    """SIGTERM live workers, give them time to mark their trials failed, then kill what remains."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        if process.pid is None:
            continue  # never started
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(timeout=5)


def _worker_error(process, log_dir: Path) -> str:
    """The error line a worker wrote last in its log (already masked), naming the log for the traceback."""
    index = process.name.rsplit("-", 1)[-1]
    log_path = log_dir / f"worker-{index}.log"
    lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith(ERROR_PREFIX)]
    error = lines[-1][len(ERROR_PREFIX):] if lines else f"exit code {process.exitcode}"
    return f"worker {index} stopped with an error: {error} (traceback in {log_path})"


def _last_failure(study: optuna.Study) -> str:
    failed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if not t.user_attrs.get(keys.NOT_RUN)]
    if not failed:
        return "a worker stopped after failed trials"
    last = max(failed, key=lambda t: t.number)
    reason = last.user_attrs.get(keys.FAIL_REASON) or last.system_attrs.get("fail_reason", "unknown error")
    return f"the last (trial {last.number}) failed with: {reason}"
