"""Helpers shared by the benchmarks: child processes with a timeout, peak memory of a process tree, tables.

Each measured run happens in a fresh Python process, so imports, thread pools and allocator state of one
contender never leak into the other's numbers.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SECONDS = 0.2


@dataclass
class ChildResult:
    """What a child run printed as JSON, with the wall time and tree RSS seen from outside."""

    payload: dict[str, Any]
    outer_seconds: float
    peak_rss_mb: float | None
    rss_method: str


class ChildFailed(RuntimeError):
    """A child run exited non-zero or ran past its timeout; the message holds the end of its stderr."""


def memory_method() -> str:
    """How peak memory is measured here: psutil when installed, else /proc, else getrusage (largest child)."""
    try:
        import psutil  # noqa: F401

        return "psutil (sum of RSS over the process tree, sampled every 0.2 s)"
    except ImportError:
        pass
    if Path("/proc/self/stat").exists():
        return "/proc (sum of RSS over the process tree, sampled every 0.2 s)"
    return "resource.getrusage(RUSAGE_CHILDREN) (largest single process, not the tree sum)"


def _tree_rss_psutil(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _tree_rss_proc(pid: int) -> int:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                # The command name may hold spaces; the fields after its closing parenthesis do not.
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for member in tree:
        try:
            with open(f"/proc/{member}/statm", encoding="ascii") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        try:
            import psutil  # noqa: F401

            self.measure = _tree_rss_psutil
        except ImportError:
            self.measure = _tree_rss_proc if Path("/proc/self/stat").exists() else None

    def run(self) -> None:
        while self.measure is not None and not self.stop.is_set():
            self.peak = max(self.peak, self.measure(self.pid))
            self.stop.wait(SAMPLE_SECONDS)


def run_child(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None) -> ChildResult:
    """Run `python argv...` whose last stdout line is a JSON object; measure its tree's peak RSS.

    Raises:
        ChildFailed: Non-zero exit, a timeout (the whole process group is killed), or no JSON line.
    """
    with tempfile.TemporaryFile(mode="w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        sampler = _TreeSampler(process.pid)
        sampler.start()
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.communicate()
            raise ChildFailed(f"{' '.join(argv)} ran past its {timeout:.0f} s timeout") from None
        finally:
            sampler.stop.set()
            sampler.join()
        outer = time.perf_counter() - started
        err.seek(0)
        tail = err.read()[-3000:]
    if process.returncode != 0:
        raise ChildFailed(f"{' '.join(argv)} exited {process.returncode}:\n{tail}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise ChildFailed(f"{' '.join(argv)} printed no JSON result:\n{tail}")
    peak: float | None = sampler.peak / 2**20 if sampler.measure is not None else None
    if peak is None:
        import resource

        # Largest single child so far (kilobytes on Linux), the only figure without /proc or psutil.
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return ChildResult(json.loads(lines[-1]), outer, peak, memory_method())


def emit(payload: dict[str, Any]) -> None:
    """The child's side of `run_child`: one JSON line on stdout."""
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def print_and_append(payload: dict[str, Any], out: Path | None) -> None:
    """Print one run's JSON line as it finishes and, with `out`, append it there (so a stopped run keeps it)."""
    print(json.dumps(payload), flush=True)
    if out is not None:
        with out.open("a") as f:
            f.write(json.dumps(payload) + "\n")


def machine_summary() -> dict[str, Any]:
    """CPU model and count, RAM, GPU, library versions and the date, for the header of every report."""
    import optuna
    import torch

    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        model = names[0] if names else model
    ram_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = next(
            int(line.split()[1]) for line in meminfo.read_text().splitlines() if line.startswith("MemTotal")
        )
        ram_gb = round(total_kb / 2**20, 1)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "commit": _git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _git_commit() -> str | None:
    """The checked-out commit, with "+changes" when the work tree differs from it (None outside git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def print_machine(summary: dict[str, Any]) -> None:
    print(
        f"# {summary['date']}, archsearch {summary['commit']}: {summary['cpu']} x {summary['cores']} cores, {summary['ram_gb']} GiB RAM, "
        f"GPU {summary['gpu'] or 'none'}; Python {summary['python']}, torch {summary['torch']}, "
        f"optuna {summary['optuna']}; load average at start {summary['load_average']}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation, as numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; None shows as a dash."""

    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
