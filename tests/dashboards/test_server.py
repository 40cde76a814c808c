"""Launching optuna-dashboard: argument checks and storage URLs that never show a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.dashboards import launch_dashboard


def test_launch_dashboard_rejects_a_missing_sqlite_file(tmp_path: Path) -> None:
    """Check that a SQLite URL to no file is refused instead of serving an empty database."""
    with pytest.raises(ValueError, match=r"No SQLite database at .*missing\.db"):
        launch_dashboard(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.timeout(60)
def test_launch_dashboard_error_never_shows_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    """Check that an unreachable database fails with the masked URL and no password anywhere."""
    # Port 1 on localhost refuses at once (or the driver is missing); either way the storage fails.
    with pytest.raises(ValueError, match=r"postgresql://alice:\*\*\*@127.0.0.1:1/hpo") as info:
        launch_dashboard("postgresql://alice:s3cret@127.0.0.1:1/hpo")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    out = capsys.readouterr()
    assert "s3cret" not in str(info.value) + out.out + out.err


def test_launch_dashboard_rejects_a_port_out_of_range(tmp_path: Path) -> None:
    """Check that port 0 is refused with the allowed range."""
    with pytest.raises(ValueError, match=r"'port' parameter must be an int in the range \[1, 65535\]. Got 0"):
        launch_dashboard(f"sqlite:///{tmp_path / 'x.db'}", port=0)
