"""Shared fixtures: database servers from the environment, skipped (or failed in CI) when absent."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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


CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; tests never download a browser
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[object]:
    """A headless Chromium, skipped when not installed unless ARCHSEARCH_REQUIRE_SERVICES=1."""
    if not CHROMIUM.exists():
        if os.environ.get("ARCHSEARCH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{CHROMIUM} is missing and ARCHSEARCH_REQUIRE_SERVICES=1: install it (apt-get install chromium).")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium).")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch_page(page) -> tuple[list[str], list[str]]:
    """Collect a page's console errors and uncaught exceptions, and the URLs it requests."""
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    return errors, requests
