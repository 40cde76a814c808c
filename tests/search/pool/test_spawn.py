"""Tests that the README's Python example works as written: a plain script and a script on stdin, with workers=None."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

# The README's example, shortened to a tiny search; deliberately without `if __name__ == "__main__":`.
SCRIPT = """
import archsearch

config = archsearch.SearchConfig.from_dict({{
    "study": {{"name": "plain", "storage": "sqlite:///{db}", "n_trials": 3}},
    "data": {{"dataset": "wine"}},
    "space": {{"layers": [0, 1], "width": [4, 8], "batch_size": [64]}},
    "train": {{"epochs": 2}},
}})
study = archsearch.run_search(config, workers=2)
print("finished", len(study.trials))
"""


def _run(command: list[str], script: str, cwd: Path, *, stdin: bool) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, input=script if stdin else None, cwd=cwd, capture_output=True, text=True, timeout=240
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("via_stdin", [False, True], ids=["script", "stdin"])
def test_run_search_with_worker_processes_runs_from_a_plain_script(tmp_path: Path, via_stdin: bool) -> None:
    """Check that run_search with 2 worker processes works from an unguarded script file and from `python -`."""
    script = SCRIPT.format(db=tmp_path / "plain.db")
    if via_stdin:
        result = _run([sys.executable, "-"], script, tmp_path, stdin=True)
    else:
        (tmp_path / "search.py").write_text(script, encoding="utf-8")
        result = _run([sys.executable, "search.py"], script, tmp_path, stdin=False)
    assert result.returncode == 0, result.stderr[-2000:]
    # Printed once: a worker that re-ran the script would have printed (or failed) again.
    assert result.stdout.count("finished") == 1
    assert "bootstrapping phase" not in result.stderr and "<stdin>" not in result.stderr
    assert len(list((tmp_path / "plain_logs").glob("worker-*.log"))) == 2
