"""Tests of where the command line takes the storage URL from: --storage, a file, or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.cli import main
from archsearch.config import SearchConfig, StudyConfig
from archsearch.controller import stored_config
from archsearch.storage_args import resolve_storage


def test_resolve_storage_prefers_the_command_line_then_the_file_then_the_environment(tmp_path: Path) -> None:
    """Check that --storage beats --storage-file, which beats ARCHSEARCH_STORAGE, which beats its _FILE variant."""
    url_file = tmp_path / "url.txt"
    url_file.write_text("  sqlite:///from-file.db\n", encoding="utf-8")
    env_file = tmp_path / "env.txt"
    env_file.write_text("sqlite:///from-env-file.db\n", encoding="utf-8")
    env = {"ARCHSEARCH_STORAGE": "sqlite:///from-env.db", "ARCHSEARCH_STORAGE_FILE": str(env_file)}
    assert resolve_storage("sqlite:///cli.db", str(url_file), env) == "sqlite:///cli.db"
    assert resolve_storage(None, str(url_file), env) == "sqlite:///from-file.db"
    assert resolve_storage(None, None, env) == "sqlite:///from-env.db"
    assert resolve_storage(None, None, {"ARCHSEARCH_STORAGE_FILE": str(env_file)}) == "sqlite:///from-env-file.db"
    assert resolve_storage(None, None, {}) is None


def test_resolve_storage_rejects_missing_and_empty_files(tmp_path: Path) -> None:
    """Check that an unreadable or empty URL file is an error naming the parameter and the file."""
    with pytest.raises(
        ValueError, match=r"The '--storage-file' parameter must name a readable file .* Got '.*nope.txt' instead"
    ):
        resolve_storage(None, str(tmp_path / "nope.txt"), {})
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(
        ValueError,
        match=r"The 'ARCHSEARCH_STORAGE_FILE' environment parameter must name a file holding a storage URL on its first line\. Got '.*empty.txt' instead \(empty\)",
    ):
        resolve_storage(None, None, {"ARCHSEARCH_STORAGE_FILE": str(empty)})


def test_cli_reads_storage_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that `archsearch status` without --storage uses $ARCHSEARCH_STORAGE and masks its password in errors."""
    monkeypatch.setenv("ARCHSEARCH_STORAGE", "postgresql+psycopg://me:it's%20secret@127.0.0.1:1/x")
    assert main(["status", "--study", "s"]) == 2
    err = capsys.readouterr().err
    assert "127.0.0.1" in err and "secret" not in err and "it's" not in err


def test_cli_without_any_storage_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that a command needing a storage says where it can come from when none is given."""
    monkeypatch.delenv("ARCHSEARCH_STORAGE", raising=False)
    monkeypatch.delenv("ARCHSEARCH_STORAGE_FILE", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["status", "--study", "s"])
    assert info.value.code == 2
    assert "status needs the storage URL: --storage, --storage-file, or $ARCHSEARCH_STORAGE" in capsys.readouterr().err


@pytest.mark.parametrize("password", ["it's", 'a"b', "two words", "p%40ss%3Aw%2Frd%25", "%D0%BF%D0%B0%D1%80"])
def test_stored_config_masks_odd_passwords(password: str) -> None:
    """Check that the config stored in the study never holds the password, whatever characters it has."""
    config = SearchConfig(study=StudyConfig(storage=f"postgresql+psycopg://bob:{password}@db/hpo"))
    assert stored_config(config)["study"]["storage"] == "postgresql+psycopg://bob:***@db/hpo"
