"""`python -m archsearch.pool.worker_entry`: the entry point of a pool's worker process.

A module of its own, which nothing imports: run with `-m`, a module that its package had already imported
would be executed twice (runpy warns about it).
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    """Read the worker's arguments as JSON from stdin and run it (see `archsearch.pool._spawn.WorkerProcess`)."""
    from archsearch.pool._placement import WorkerSlot
    from archsearch.pool._worker import worker_main

    arguments = json.loads(sys.stdin.read())
    arguments["slot"] = WorkerSlot(**arguments["slot"])
    module, name = arguments["kind"].split(":")
    arguments["kind"] = getattr(importlib.import_module(module), name)()
    worker_main(**arguments)


if __name__ == "__main__":
    main()
