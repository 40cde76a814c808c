"""Tests of storage URL handling: masking, backends, artifact folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.storage import StorageError, backend_of, default_artifact_dir, mask_url, sqlite_path


def test_mask_url_hides_password() -> None:
    """Check that a URL's password never survives masking, while user and host stay readable."""
    masked = mask_url("postgresql+psycopg://alice:pa55w0rd@db.example:5432/optuna")
    assert masked == "postgresql+psycopg://alice:***@db.example:5432/optuna"
    assert "pa55w0rd" not in masked


def test_mask_url_handles_text_around_urls_and_no_password() -> None:
    """Check that masking works inside sentences and leaves password-less URLs alone."""
    text = "cannot reach 'mysql+pymysql://root:s3cret@127.0.0.1/test' or postgresql://bob@h/d"
    assert mask_url(text) == "cannot reach 'mysql+pymysql://root:***@127.0.0.1/test' or postgresql://bob@h/d"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql+pymysql://bob:p@ss:w0rd@10.0.0.2/hpo", "mysql+pymysql://bob:***@10.0.0.2/hpo"),
        ("postgresql://alice@db.example/hpo", "postgresql://alice@db.example/hpo"),
        ("sqlite:///runs/study.db", "sqlite:///runs/study.db"),
        ("postgresql+psycopg://bob@h/db?password=s3cret&sslmode=require", "postgresql+psycopg://bob@h/db?password=***&sslmode=require"),
        ("host=h user=bob password=s3cret dbname=x", "host=h user=bob password=*** dbname=x"),
    ],
)
def test_mask_url_edge_cases(url: str, shown: str) -> None:
    """Check that a password containing '@' or ':' is masked whole and password-less URLs are unchanged."""
    assert mask_url(url) == shown


def test_backend_of_known_backends() -> None:
    """Check that the database family is read from the URL's dialect."""
    assert backend_of("sqlite:///x.db") == "sqlite"
    assert backend_of("postgresql+psycopg://u@h/d") == "postgresql"
    assert backend_of("mysql+pymysql://u@h/d") == "mysql"


def test_backend_of_rejects_unsupported_backend_without_leaking_password() -> None:
    """Check that an unsupported backend is an error that masks the password."""
    with pytest.raises(StorageError, match=r"must use one of the backends sqlite, postgresql, mysql\. Got 'oracle://u:\*\*\*@h/d'"):
        backend_of("oracle://u:secret@h/d")


def test_backend_of_rejects_malformed_url() -> None:
    """Check that a string that is no URL gets an error naming the expected form."""
    with pytest.raises(StorageError, match="must be a SQLAlchemy database URL"):
        backend_of("archsearch.db")


def test_default_artifact_dir_beside_sqlite_file(tmp_path: Path) -> None:
    """Check that weights of a SQLite study live next to the database file."""
    url = f"sqlite:///{tmp_path}/runs.db"
    assert sqlite_path(url) == tmp_path / "runs.db"
    assert default_artifact_dir(url) == tmp_path / "runs_artifacts"
    assert default_artifact_dir("postgresql+psycopg://u@h/d") == Path("archsearch_artifacts")
