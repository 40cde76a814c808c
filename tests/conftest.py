"""Shared fixtures: database servers from the environment, skipped (or failed in CI) when absent."""

from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_URL = os.environ.get("ARCHSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("ARCHSEARCH_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _service_url(url: str, what: str) -> str:
    """Return `url` when its server answers; skip (or fail with ARCHSEARCH_REQUIRE_SERVICES=1) otherwise."""
    import sqlalchemy

    from archsearch.storage import mask_url

    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as e:  # any driver or connection error means "no server here"
        reason = f"{what} at {mask_url(url)} is not reachable: {type(e).__name__}: {str(e).splitlines()[0]}"
        if os.environ.get("ARCHSEARCH_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " (ARCHSEARCH_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _service_url(POSTGRES_URL, "PostgreSQL")


@pytest.fixture(scope="session")
def mysql_url() -> str:
    return _service_url(MYSQL_URL, "MariaDB/MySQL")


@pytest.fixture
def unique_name() -> str:
    """A study name no other test (or earlier run) uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
