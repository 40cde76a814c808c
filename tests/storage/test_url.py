"""Tests of storage URL handling: masking, backends, artifact folders."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, quote_plus

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
        (
            "postgresql+psycopg://bob@h/db?password=s3cret&sslmode=require",
            "postgresql+psycopg://bob@h/db?password=***&sslmode=require",
        ),
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
    with pytest.raises(
        StorageError, match=r"must use one of the backends sqlite, postgresql, mysql\. Got 'oracle://u:\*\*\*@h/d'"
    ):
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


ODD_PASSWORDS = ["it's", 'say "hi"', "two words", "p@ss:w/rd", "100%sure", "pärolь-密码", "a'b\"c d@e:f/g%h"]


@pytest.mark.parametrize("password", ODD_PASSWORDS)
def test_mask_url_parses_passwords_with_odd_characters(password: str) -> None:
    """Check that a percent-encoded password with quotes, spaces, @ : / % or unicode is masked whole."""
    url = f"postgresql+psycopg://bob:{quote(password, safe='')}@db.example:5432/hpo"
    masked = mask_url(url)
    assert masked == "postgresql+psycopg://bob:***@db.example:5432/hpo"


@pytest.mark.parametrize("password", ["it's", 'say "hi"', "two words"])
def test_mask_url_parses_unencoded_quotes_and_spaces(password: str) -> None:
    """Check that quotes and spaces typed into a URL without encoding are masked too."""
    assert mask_url(f"postgresql://bob:{password}@h/db") == "postgresql://bob:***@h/db"


@pytest.mark.parametrize("password", ODD_PASSWORDS)
def test_mask_url_hides_a_known_password_inside_any_text(password: str) -> None:
    """Check that a driver message quoting a parsed URL's password, raw or percent-encoded, does not leak it."""
    url = f"postgresql+psycopg://bob:{quote(password, safe='')}@db.example/hpo"
    backend_of(url)  # every storage URL passes here first, which is how its password becomes known
    message = (
        f"connection to server failed: (url {url!r}) password={password!r} "
        f"conninfo 'password={quote(password, safe='')}' or {quote_plus(password)}"
    )
    masked = mask_url(message)
    assert password not in masked
    assert quote(password, safe="") not in masked
    assert quote_plus(password) not in masked
    assert "connection to server failed" in masked


def test_mask_url_keeps_short_known_passwords_out_of_ordinary_words() -> None:
    """Check that a 2-character password is masked in a URL but ordinary words that contain it stay readable."""
    backend_of("postgresql://bob:er@h/db")
    assert mask_url("server error at postgresql://bob:er@h/db") == "server error at postgresql://bob:***@h/db"


def test_backend_of_rejects_unencoded_at_sign_with_a_hint() -> None:
    """Check that a password with a raw '@' gets an error telling how to encode it, password masked."""
    with pytest.raises(
        StorageError, match=r"percent-encoded: %40 %3A %2F %25\)\. Got 'postgresql://bob:\*\*\*@"
    ) as info:
        backend_of("postgresql://bob:p@ss:w0rd@10.0.0.2/hpo")
    assert "w0rd" not in str(info.value)
