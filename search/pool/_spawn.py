"""Worker processes started as `python -m archsearch.pool.worker_entry`, never by re-importing the caller's `__main__`.

multiprocessing's "spawn" start method runs the parent's main script again in every child: a plain
script calling `archsearch.run_search(...)` without an `if __name__ == "__main__":` guard then fails
with multiprocessing's "bootstrapping phase" error, and a script read from stdin fails with
`FileNotFoundError: '<stdin>'`. A child started here imports only archsearch. Its arguments travel as
JSON through its stdin, so the storage URL (and its password) never shows in `ps`.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

__all__ = ["WorkerProcess"]


class WorkerProcess:
    """A worker subprocess with the part of `multiprocessing.Process`'s interface the pool uses.

    The study's kind of job travels by its class's name (`module:Class`), as pickle would send it: the
    worker imports that module, which registers the kind there too, and builds the kind anew (kinds hold no
    state).
    """

    def __init__(self, name: str, **arguments: Any) -> None:
        self.name = name
        slot, kind = arguments["slot"], type(arguments["kind"])
        self._payload = json.dumps(
            {**arguments, "slot": dataclasses.asdict(slot), "kind": f"{kind.__module__}:{kind.__qualname__}"}
        )
        self._popen: subprocess.Popen | None = None

    def start(self) -> None:
        self._popen = subprocess.Popen([sys.executable, "-m", "archsearch.pool.worker_entry"], stdin=subprocess.PIPE)
        self._popen.stdin.write(self._payload.encode())
        self._popen.stdin.close()

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    @property
    def exitcode(self) -> int | None:
        """None while running; the exit code, or -N for a process killed by signal N (as multiprocessing says)."""
        return None if self._popen is None else self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def terminate(self) -> None:
        if self.is_alive():
            self._popen.terminate()

    def kill(self) -> None:
        if self.is_alive():
            self._popen.kill()

    def join(self, timeout: float | None = None) -> None:
        if self._popen is None:
            return
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
