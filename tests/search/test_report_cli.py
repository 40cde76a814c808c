"""`archsearch report` and `archsearch status` on a real search, checked as a user sees them."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archsearch.cli import main

from ..conftest import watch_page
from .conftest import FinishedSearch

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.mark.timeout(300)
def test_cli_report_of_a_real_search_renders_offline(
    digits_search: FinishedSearch, tmp_path: Path, browser, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that the report of a real digits search draws its figures in Chromium, offline and without errors,
    and that the same figures are saved into the study for optuna-dashboard."""
    out = tmp_path / "report.html"
    assert main(["report", "--storage", digits_search.url, "--study", "digits", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Report written to" in printed and "Pushed" in printed
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, requests = watch_page(page)
    page.goto(out.as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 6", timeout=60_000)
    drawn = page.evaluate(
        # Cartesian traces are g.trace; parallel coordinates draw g.parcoords instead.
        "Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(d => d.querySelectorAll('g.trace, g.parcoords').length)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-real-search.png"), full_page=True)
    assert all(n > 0 for n in drawn), drawn
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    # The summary names the linear baseline and the knee from this study's own numbers.
    text = page.inner_text("body")
    assert "linear" in text.lower() and "knee" in text.lower()
    import optuna_dashboard

    study = optuna.load_study(study_name="digits", storage=digits_search.url)
    assert "archsearch" in optuna_dashboard.get_note(study).lower() or optuna_dashboard.get_note(study)


@pytest.mark.timeout(120)
def test_cli_status_reports_counts_and_best(digits_search: FinishedSearch, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that `archsearch status` prints counts by state, the total and the best trial."""
    assert main(["status", "--storage", digits_search.url, "--study", "digits"]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "finished (complete + pruned) 8 of n_trials 8" in out
    assert f"best trial {digits_search.study.best_trial.number}" in out


def test_cli_status_running_trial_shows_worker_and_heartbeat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that a running trial is listed with its worker and the age of its last heartbeat."""
    from archsearch.storage import make_storage

    url = f"sqlite:///{tmp_path}/s.db"
    storage = make_storage(url, heartbeat_interval=60, grace_period=120)
    study = optuna.create_study(study_name="s", storage=storage)
    with pytest.warns(UserWarning, match="Heartbeat of storage is supposed to be used with Study.optimize"):
        trial = study.ask()  # a worker's trial, as study.optimize would start it
    trial.set_user_attr("worker", "host-a:123/w0")
    storage.record_heartbeat(trial._trial_id)
    assert main(["status", "--storage", url, "--study", "s"]) == 0
    out = capsys.readouterr().out
    assert f"running trial {trial.number}: worker host-a:123/w0, heartbeat" in out and "s ago" in out
    assert "no completed trial yet" in out


def test_cli_status_unknown_study_lists_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that asking for a missing study names the studies that exist."""
    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="present", storage=url)
    assert main(["status", "--storage", url, "--study", "absent"]) == 2
    assert "No study named 'absent'" in capsys.readouterr().err
