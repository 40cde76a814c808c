"""Open the report and optuna-dashboard in headless Chromium and check what a user would see."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import optuna
import pytest

from archsearch.dashboards import build_report

from ..conftest import watch_page


REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


@pytest.mark.timeout(180)
def test_report_html_renders_every_figure_offline(browser, demo_study: optuna.Study, tmp_path: Path) -> None:
    """Check that report.html draws every drawable figure with no console error and no network request."""
    report = build_report(demo_study)
    path = report.write_html(tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, requests = watch_page(page)
    page.goto(path.as_uri())
    drawable = [f for f in report.figures if f.drawable]
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {len(drawable)}", timeout=30_000)
    # Each plot div must hold drawn traces, not just an empty plotly container.
    traces = page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => [d.id, d.querySelectorAll('g.trace').length])"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-full.png"), full_page=True)
    assert [k for k, _ in traces] == [f"fig-{f.key}" for f in drawable]
    assert all(n > 0 for _, n in traces), traces
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    _save_readme_screenshot(page)


def _save_readme_screenshot(page) -> None:
    # The README picture: the summary and the first figures, at a width that reads on GitHub. The
    # committed docs/report.png is only rewritten on request, so test runs leave the tree clean.
    page.set_viewport_size({"width": 1150, "height": 1850})
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "report-readme.png"))
    if os.environ.get("ARCHSEARCH_UPDATE_DOCS") == "1":
        page.screenshot(path=str(REPO / "docs" / "report.png"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(demo_study: optuna.Study, tmp_path: Path) -> Iterator[tuple[str, optuna.Study]]:
    """`archsearch dashboard` in a subprocess on the demo study (report pushed); yields the base URL."""
    build_report(demo_study).push_to_dashboard(demo_study)
    storage_url = f"sqlite:///{tmp_path / 'demo.db'}"  # where the demo_study fixture wrote it
    port = _free_port()
    command = [
        sys.executable, "-m", "archsearch.cli", "dashboard", "--storage", storage_url, "--port", str(port),
        "--artifacts", str(tmp_path / "artifacts"),
    ]
    log = open(tmp_path / "dashboard.log", "w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/dashboard/", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"optuna-dashboard did not start: {(tmp_path / 'dashboard.log').read_text()}")
            time.sleep(0.3)
        yield base, demo_study
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


@pytest.mark.timeout(180)
def test_dashboard_shows_trials_and_pushed_figures(browser, dashboard) -> None:
    """Check that optuna-dashboard shows the study's trials, the pushed archsearch figures and the note."""
    base, study = dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/dashboard/studies/{study._study_id}")
    # optuna-dashboard draws each pushed figure in a div with id "user-defined-plot:<graph object id>".
    pushed = {f"user-defined-plot:archsearch_{f.key}" for f in build_report(study).figures if f.drawable}
    page.wait_for_function(
        "ids => ids.every(id => document.getElementById(id)?.querySelector('g.trace'))", arg=sorted(pushed), timeout=30_000
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-study.png"), full_page=True)
    page.goto(f"{base}/dashboard/studies/{study._study_id}/note")
    page.get_by_text(f"archsearch report: {study.study_name}").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-note.png"), full_page=True)
    page.goto(f"{base}/dashboard/studies/{study._study_id}/trials")
    # The list is virtualized, so the count header stands for the rows further down.
    page.get_by_text(f"{len(study.trials)} Trials", exact=True).wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-trials.png"), full_page=True)
    assert page.get_by_text("Trial 0", exact=True).count() > 0
    assert page.get_by_text("Pruned", exact=True).count() > 0
