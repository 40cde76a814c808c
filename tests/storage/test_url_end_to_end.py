"""Tests that a password with quotes, spaces, ':' and unicode stays out of every output of a real search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import optuna
import pytest

# Typed into the URL as is (quotes, spaces, ':' and unicode need no encoding there): what the old pattern missed.
PASSWORD = 'it\'s "so" se:cret ü'
CLI = [sys.executable, "-m", "archsearch.cli"]


def _with_password(url: str) -> str:
    # The test server trusts local connections, so any password opens it; what matters is where it shows.
    head, _, tail = url.partition("://")
    user, _, rest = tail.partition("@")
    return f"{head}://{user.split(':')[0]}:{PASSWORD}@{rest}"


def _leaks(text: str) -> list[str]:
    forms = {PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD), "se:cret", "se%3Acret"}
    return [form for form in forms if form in text]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_odd_password_stays_out_of_search_status_logs_and_stored_config(
    postgres_url: str, unique_name: str, tmp_path: Path
) -> None:
    """Check that search, status, worker logs, an error, and the study's stored config never show the password."""
    url = _with_password(postgres_url)
    config = tmp_path / "s.toml"
    config.write_text(
        f'[study]\nname = "{unique_name}"\nn_trials = 2\n[data]\ndataset = "wine"\n'
        "[space]\nlayers = [0, 1]\nwidth = [4, 8]\n[train]\nepochs = 2\n",
        encoding="utf-8",
    )
    env = {**os.environ, "ARCHSEARCH_STORAGE": url}
    search = subprocess.run(
        [*CLI, "search", str(config), "--workers", "2", "--log-dir", str(tmp_path / "logs")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert search.returncode == 0, search.stderr[-2000:]
    status = subprocess.run(
        [*CLI, "status", "--study", unique_name], env=env, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0 and "postgresql+psycopg://postgres:***@" in status.stdout
    missing = subprocess.run(
        [*CLI, "export", "--study", "no-such-study", "--out", str(tmp_path / "x")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # One error line (no study, or a dropped connection on a shared server): either way it must be masked.
    assert missing.returncode == 2 and missing.stderr.startswith("archsearch: error: ")
    stored = optuna.load_study(study_name=unique_name, storage=url).user_attrs["archsearch_config"]
    logs = "".join(path.read_text(encoding="utf-8") for path in (tmp_path / "logs").glob("*.log"))
    outputs = (
        search.stdout
        + search.stderr
        + status.stdout
        + status.stderr
        + missing.stdout
        + missing.stderr
        + logs
        + json.dumps(stored)
    )
    assert _leaks(outputs) == []
    assert stored["study"]["storage"] == "postgresql+psycopg://postgres:***@" + postgres_url.split("@", 1)[1]
