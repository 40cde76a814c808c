"""The local worker pool: spawn one process per slot, show progress, stop them cleanly on a signal."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, TextIO

import optuna
from optuna.trial import TrialState

from archsearch.base import ArchsearchError
from archsearch.config import MAX_TRIALS
from archsearch.pool._kinds import JobKind, job_kind
from archsearch.pool._placement import WorkerSlot
from archsearch.pool._spawn import WorkerProcess
from archsearch.pool._supervision import RetryStaleTrial, fail_trials_of_dead_worker
from archsearch.pool._worker import ERROR_PREFIX, EXIT_ERROR, EXIT_FAILURE_STREAK
from archsearch.stats import format_duration
from archsearch.storage import is_feasible, keys, maximizes, quality_value

__all__ = [
    "run_pool",
    "PoolFailure",
    "PROGRESS_LEGEND",
    "StatusWriter",
    "fit_progress",
    "legend_lines",
    "progress_line",
]

POLL_SECONDS = 0.25
STOP_GRACE_SECONDS = 30.0


class PoolFailure(ArchsearchError, RuntimeError):
    """A worker stopped after a streak of failed trials (`streak` is True), or died with an error."""

    def __init__(self, message: str, *, streak: bool = False):
        super().__init__(message)
        self.streak = streak


# Printed once before the first status line, so "w0:8" and the rest need no guessing.
PROGRESS_LEGEND = (
    "[archsearch] status: trials done/total (complete, pruned, failed, running) | best so far | last finished "
    "| elapsed, ETA | wN:k = trials worker N has finished"
)


def progress_line(
    study: optuna.Study,
    total: int,
    metric: str,
    started: float,
    *,
    now: float | None = None,
    deadline: float | None = None,
    width: int | None = None,
) -> str:
    """One status line: trials done/pruned/failed/running, best and last trial with their architectures, ETA.

    Trials are named as the study's kind of job says (a search's by number and widths). A search without a trial
    count (`total` of MAX_TRIALS) runs to its `deadline` (`time.time()`), and the line says how long that is. With
    `width` (a terminal's columns) the least useful fields give way first (`fit_progress`).
    """
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    ended = [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) and not t.user_attrs.get(keys.NOT_RUN)
    ]
    # Failed trials are shown apart: the total counts complete and pruned trials only ("34/30" counted failures).
    counted = [t for t in ended if t.state != TrialState.FAIL]
    done = len(counted)
    per_worker = Counter(_short_label(t.user_attrs.get(keys.WORKER, "?")) for t in counted)
    name = job_kind(study).run_namer(study, trials)
    counts = {
        "complete": states[TrialState.COMPLETE],
        "pruned": states[TrialState.PRUNED],
        "failed": sum(t.state == TrialState.FAIL for t in ended),
        "running": states[TrialState.RUNNING],
    }
    fields = {
        "states": "(" + ", ".join(f"{n} {what}" for what, n in counts.items()) + ")",
        "states_short": "(" + (", ".join(f"{n} {what}" for what, n in counts.items() if n) or "none yet") + ")",
        "workers": " ".join(f"{w}:{n}" for w, n in sorted(per_worker.items())),
        "best": "no completed trial yet",
    }
    finished = [t for t in trials if t.state == TrialState.COMPLETE and quality_value(t) is not None and is_feasible(t)]
    if finished:
        pick = max if maximizes(study) else min
        best_trial = pick(finished, key=quality_value)
        fields["best"] = f"best {metric} {quality_value(best_trial):.4f}"
        fields["best_name"] = f" ({name(best_trial)})"
    if ended:
        latest = max(ended, key=lambda t: (t.datetime_complete or t.datetime_start, t.number))
        outcome = (
            f"{quality_value(latest):.4f}"
            if latest.state == TrialState.COMPLETE and quality_value(latest) is not None
            else latest.state.name.lower()
        )
        fields["last"] = f"last {name(latest)}: {outcome}"
    elapsed = (time.monotonic() if now is None else now) - started
    remaining = max(total - done, 0)
    fields["count"], fields["elapsed"] = f"{done}/{total}", f"{format_duration(elapsed)} elapsed"
    if done and remaining:
        fields["eta"] = f"ETA {format_duration(elapsed / done * remaining)}"
    if total >= MAX_TRIALS:
        fields["count"] = str(done)
        fields.pop("eta", None)
        if deadline is not None:
            fields["eta"] = f"timeout in {format_duration(max(deadline - time.time(), 0))}"
    return fit_progress(fields, width)


# What a narrow terminal gives up, least useful first: the count, best value and ETA stay. "zero_states" leaves
# out the counts by state that are 0 before "states" drops them all.
_DROP_ORDER = ("workers", "last", "zero_states", "best_name", "prefix", "states", "elapsed")


def fit_progress(fields: dict[str, str], width: int | None) -> str:
    """The status line of `fields` (see `progress_line`) in at most `width` characters (whole with `width` None).

    Fields are dropped in `_DROP_ORDER` until the line fits, then the most useful of the dropped ones that fit
    again are put back; the line is cut only when even the count, best value and ETA do not fit.
    """
    dropped: set[str] = set()
    for field in _DROP_ORDER:
        if width is None or len(_compose(fields, dropped)) <= width:
            break
        dropped.add(field)
    for field in reversed(_DROP_ORDER):
        if field in dropped and len(_compose(fields, dropped - {field})) <= width:
            dropped.discard(field)
    line = _compose(fields, dropped)
    return line if width is None else line[:width]


def _compose(fields: dict[str, str], dropped: set[str]) -> str:
    def kept(key: str) -> str:
        return "" if key in dropped else fields.get(key, "")

    states = fields["states_short"] if "zero_states" in dropped else fields["states"]
    head = ("" if "prefix" in dropped else "[archsearch] ") + f"{fields['count']} trials"
    head += f" {states}" if "states" not in dropped else ""
    clock = ", ".join(part for part in (kept("elapsed"), fields.get("eta", "")) if part)
    parts = [head, fields["best"] + kept("best_name"), kept("last"), clock, kept("workers")]
    return " | ".join(part for part in parts if part)


def legend_lines(width: int | None) -> list[str]:
    """`PROGRESS_LEGEND` wrapped to fit `width` (one line with `width` None): printed once, so it loses nothing."""
    if width is None or len(PROGRESS_LEGEND) <= width:
        return [PROGRESS_LEGEND]
    return textwrap.wrap(PROGRESS_LEGEND, width=max(width, 20), subsequent_indent="  ", break_on_hyphens=False)


class StatusWriter:
    """Shows status lines: on a terminal one line rewritten in place, elsewhere a new line when something changed.

    Args:
        stream: Where to write; a terminal when its ``isatty()`` says so.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._news = ""
        self._open = False

    @property
    def width(self) -> int | None:
        """The columns a line may take: the terminal's less one (the cursor's), None off a terminal."""
        return shutil.get_terminal_size().columns - 1 if self.tty else None

    def update(self, line: str) -> None:
        """Show ``line``; off a terminal only when more than the clock changed."""
        width = self.width
        if not self._open and not self._news:
            self.stream.write("\n".join(legend_lines(width)) + "\n")
        if self.tty:
            # A line wider than the terminal wraps, and \r then rewrites only its last row.
            self.stream.write("\r" + line[:width] + "\x1b[K")
            self._open = True
        else:
            news = _CLOCK.sub("", line)
            if news == self._news:
                return
            self.stream.write(line + "\n")
        self._news = _CLOCK.sub("", line)
        self.stream.flush()

    def message(self, text: str) -> None:
        """Write a line of its own, below the status line on a terminal."""
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the in-place line, so what follows starts on a fresh one."""
        if self._open:
            self.stream.write("\n")
            self._open = False


# The elapsed time and ETA change every poll; alone they are no news for a log file.
_CLOCK = re.compile(r" \| [^|]* elapsed[^|]*")


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
    kind: JobKind | None = None,
    retry: RetryStaleTrial | None = None,
    data_dir: str | None = None,
) -> None:
    """Run one spawned worker process per slot until they all stop; raise on a failure streak.

    SIGINT/SIGTERM to this process stop the workers: each ends its running trial as FAIL and exits, and
    the interrupt is re-raised here once they are gone, so rerunning the search continues the study.
    The workers ignore SIGINT themselves, so a Ctrl-C at the terminal prints one line, not one
    traceback per worker, and they die with this process (see `archsearch.pool._supervision`). With `retry`,
    the trials of a worker that dies mid-trial are failed and retried at once, not after the grace period.
    With `data_dir` (`archsearch.pool._shared_data`) the workers map the data there instead of loading it.
    """
    stream = stream or sys.stderr
    log_dir.mkdir(parents=True, exist_ok=True)
    kind = kind or job_kind(study)
    processes = [
        # Not multiprocessing: its spawn would run the caller's unguarded script again in every worker.
        WorkerProcess(
            f"archsearch-worker-{slot.index}",
            url=url,
            study_name=study.study_name,
            slot=slot,
            log_path=str(log_dir / f"worker-{slot.index}.log"),
            total=total,
            deadline=deadline,
            max_trials=max_trials,
            kind=kind,
            parent_pid=os.getpid(),
            data_dir=data_dir,
        )
        for slot in slots
    ]
    pool = _Supervisor(study, processes, log_dir, retry)
    status = StatusWriter(stream)
    started = time.monotonic()

    def show() -> None:
        if not quiet:
            status.update(progress_line(study, total, metric, started, deadline=deadline, width=status.width))

    with _signals_noted() as interrupted:
        try:
            _start(processes)
            if not quiet:
                devices = ", ".join(sorted({s.device for s in slots}))
                stream.write(f"[archsearch] {len(slots)} workers ({devices}); logs in {log_dir}\n")
            while any(p.is_alive() for p in processes):
                pool.check(interrupted, ended=False)
                pool.reap_all()
                show()
                time.sleep(POLL_SECONDS)
            show()  # the workers may finish between two polls: the last line shows the state they left
            status.close()
            pool.reap_all()
            warning = pool.check(interrupted, ended=True)
            if warning:
                status.message(warning)
        finally:
            status.close()
            _stop(processes)
            # Workers that had to be killed (a trial stuck past the grace) leave their trial RUNNING.
            pool.reap_all()


@contextlib.contextmanager
def _signals_noted() -> Iterator[list[int]]:
    """Within the block, SIGINT and SIGTERM are only noted (in the list yielded); the pool acts on them."""
    interrupted: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda signum, frame: interrupted.append(signum))
    try:
        yield interrupted
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start(processes: list) -> None:
    """Start the workers with SIGINT ignored, which they keep (a spawned process inherits ignored signals)."""
    ignoring = threading.current_thread() is threading.main_thread()
    noted = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignoring else None
    try:
        for process in processes:
            process.start()
    finally:
        if ignoring:
            signal.signal(signal.SIGINT, noted)


class _Supervisor:
    """What the pool watches in its workers: how they ended, and the trials a dead one left RUNNING."""

    def __init__(self, study: optuna.Study, processes: list, log_dir: Path, retry: RetryStaleTrial | None):
        self.study, self.processes, self.log_dir, self.retry = study, processes, log_dir, retry
        self.reaped: set[int] = set()

    def check(self, interrupted: list[int], *, ended: bool) -> str | None:
        """Raise on what stops the pool (an interrupt, a failure streak, a worker's error; once all workers
        `ended`, their all dying); return a warning when some died and the others finished the study."""
        processes = self.processes
        if interrupted:
            raise KeyboardInterrupt()
        if any(p.exitcode == EXIT_FAILURE_STREAK for p in processes):
            _stop(processes)
            raise PoolFailure(_last_failure(self.study), streak=True)
        broken = [p for p in processes if p.exitcode == EXIT_ERROR]
        if broken:
            _stop(processes)
            raise PoolFailure(_worker_error(broken[0], self.log_dir))
        crashed = [p for p in processes if p.exitcode not in (None, 0)]
        if not ended or not crashed:
            return None
        codes = ", ".join(f"{p.name} exited {p.exitcode}" for p in crashed)
        if len(crashed) == len(processes):
            raise PoolFailure(f"every worker died ({codes}); see the logs in {self.log_dir}")
        # Killed workers' trials are retried by the others; say so, but the study is complete.
        return f"[archsearch] warning: {codes}; see {self.log_dir}"

    def reap_all(self) -> None:
        for process in self.processes:
            self.reap(process)

    def reap(self, process: Any) -> None:
        """Fail and retry the trials a worker left RUNNING when it ended (once per worker).

        Whatever its exit code: a worker that stopped cleanly left none, but one whose last write failed
        as it was stopped (a signal in the middle of a database call) may have, and no one else would end it.
        """
        if self.retry is None or process.pid in self.reaped or process.exitcode is None:
            return
        self.reaped.add(process.pid)
        code = process.exitcode
        if code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        elif code == 130:
            how = "stopped on an interrupt before it could close this trial"
        else:
            how = f"exited with code {code}"
        again = self.retry.put_back if code == 130 else self.retry  # an interrupt spends no retry
        fail_trials_of_dead_worker(self.study, again, process.pid, f"its worker process (pid {process.pid}) {how}")


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
    error = lines[-1][len(ERROR_PREFIX) :] if lines else f"exit code {process.exitcode}"
    return f"worker {index} stopped with an error: {error} (traceback in {log_path})"


def _last_failure(study: optuna.Study) -> str:
    failed = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if not t.user_attrs.get(keys.NOT_RUN)
    ]
    if not failed:
        return "a worker stopped after failed trials"
    last = max(failed, key=lambda t: t.number)
    reason = last.user_attrs.get(keys.FAIL_REASON) or last.system_attrs.get(keys.OPTUNA_FAIL_REASON, "unknown error")
    return f"the last (trial {last.number}) failed with: {reason}"
