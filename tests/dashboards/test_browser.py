"""Open the report and optuna-dashboard in headless Chromium and check what a user would see."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import save_note

from archsearch.dashboards import build_report
from archsearch.dashboards._report import graph_object_id
from archsearch.sensitivity._run import companion_preface
from archsearch.storage import keys, name_metric

from ..conftest import make_trial, watch_page

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

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
    # Each plot div must hold drawn traces (parallel coordinates draw a g.parcoords), not an empty container.
    traces = page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => [d.id, d.querySelectorAll('g.trace, g.parcoords').length])"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-full.png"), full_page=True)
    assert [k for k, _ in traces] == [f"fig-{f.key}" for f in drawable]
    assert all(n > 0 for _, n in traces), traces
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    _save_readme_screenshot(page)


# Figures of the report with a metric y-axis, and the chance-level accuracy of issue #23's digits trial 4.
_METRIC_AXIS_FIGURES = ["metric_vs_depth", "metric_vs_params", "metric_vs_widths", "dropout_by_size", "best_so_far"]
_CHANCE = 0.0975


@pytest.mark.timeout(180)
def test_report_in_the_browser_fits_axes_to_the_bulk(browser, demo_study: optuna.Study, tmp_path: Path) -> None:
    """Check that with one trial at chance the rendered metric axes and parallel-coordinates colours fit the
    other trials, each caption counting the far-off one, and figure 6's title matches what its caption measures."""
    demo_study.add_trial(make_trial(widths=[64, 32], dropouts=[0.1, 0.1], value=_CHANCE, lr=1e-4))
    report = build_report(demo_study)
    path = report.write_html(tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, _ = watch_page(page)
    page.goto(path.as_uri())
    drawable = [f for f in report.figures if f.drawable]
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {len(drawable)}", timeout=30_000)
    ranges = page.evaluate(
        "keys => keys.map(k => document.getElementById('fig-' + k)._fullLayout.yaxis.range)", _METRIC_AXIS_FIGURES
    )
    bulk = [t.value for t in demo_study.trials if t.value is not None and t.value > 0.5]
    # Each axis fits the trials its figure draws (figure 3 leaves the linear ones out): not stretched to chance.
    for key, (low, high) in zip(_METRIC_AXIS_FIGURES, ranges):
        assert _CHANCE < low and high >= max(bulk) and high - low < 0.3, (key, low, high)
    cmin, cmax = page.evaluate(
        "(() => { const l = document.getElementById('fig-parallel_coordinates')._fullData[0].line; return [l.cmin, l.cmax]; })()"
    )
    assert _CHANCE < cmin <= min(bulk) and cmax >= max(bulk)
    captions = page.locator("p.caption").all_inner_texts()
    chance = f"(#{len(demo_study.trials) - 1} at {_CHANCE}) is drawn at"
    assert sum(chance in c for c in captions) >= len(_METRIC_AXIS_FIGURES) + 1
    headings = page.locator("h2").all_inner_texts()
    # The demo repeats two settings with several seeds, so figure 6 measures (and names) the seed spread.
    assert "6. Seed-to-seed and trial-to-trial spread by size" in headings
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-chance-trial.png"), full_page=True)
    assert errors == []


@pytest.mark.timeout(120)
def test_report_in_the_browser_states_no_comparison_from_two_trials(browser, study_factory, tmp_path: Path) -> None:
    """Check that a tiny study's page says "cannot tell" where a bin has 3 trials against 2, and figure 6's title
    promises no seed-to-seed spread."""
    study = study_factory()
    for dropout, value in [(0.0, 0.9805), (0.0, 0.975), (0.2, 0.9694), (0.2, 0.97), (0.2, 0.96)]:
        study.add_trial(make_trial(widths=[16], dropouts=[dropout], value=value))
    study.add_trial(make_trial(widths=[64, 64], dropouts=[0.1, 0.1], value=0.95))
    path = build_report(study).write_html(tmp_path / "tiny.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)
    text = page.inner_text("body")
    assert "cannot tell (too few trials to compare (3 with dropout, 2 without; at least 3 each))" in text
    assert "hurts (" not in text and "helps (" not in text and "Seed-to-seed" not in text
    assert "Trial-to-trial spread by size" in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-tiny-study.png"), full_page=True)


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


@contextlib.contextmanager
def _dashboard_server(storage_url: str, folder: Path) -> Iterator[str]:
    """`archsearch dashboard` on 127.0.0.1 in a subprocess, killed on exit; yields its base URL once it answers."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "archsearch.cli",
        "dashboard",
        "--storage",
        storage_url,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--artifacts",
        str(folder / "artifacts"),
    ]
    with open(folder / "dashboard.log", "w") as log:
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
                    pytest.fail(f"optuna-dashboard did not start: {(folder / 'dashboard.log').read_text()}")
                time.sleep(0.3)
            yield base
        finally:
            proc.kill()
            proc.wait(timeout=10)


def _companion_study(storage: optuna.storages.BaseStorage, parent: optuna.Study) -> optuna.Study:
    """A sensitivity companion laid out as `archsearch sensitivity` writes it: runs with fixed one-value params."""
    companion = optuna.create_study(
        study_name=f"{parent.study_name}.sensitivity", storage=storage, direction="maximize"
    )
    companion.set_user_attr(keys.KIND, keys.SENSITIVITY_KIND)
    companion.set_user_attr(keys.METRIC, "accuracy")
    name_metric(companion, "accuracy")
    for seed, (widths, value) in enumerate([([32], 0.91), ([33], 0.912), ([32], 0.905), ([33], 0.907)]):
        job = {keys.SEED: seed % 2, keys.DEPTH: len(widths), keys.N_PARAMS: 100 * widths[0]}
        companion.add_trial(
            optuna.trial.create_trial(
                value=value,
                params=job,
                user_attrs={**job, keys.WIDTHS: widths, "change": "centre"},
                distributions={k: optuna.distributions.IntDistribution(v, v) for k, v in job.items()},
            )
        )
    save_note(companion, companion_preface(parent.study_name))
    return companion


@pytest.fixture(scope="module")
def dashboard(
    _demo_database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, optuna.Study, optuna.Study]]:
    """`archsearch dashboard` in a subprocess on the demo study (report pushed) and a companion; yields both.

    One server for the module: its tests only look.
    """
    tmp_path = tmp_path_factory.mktemp("dashboard")
    shutil.copyfile(_demo_database, tmp_path / "demo.db")
    storage_url = f"sqlite:///{tmp_path / 'demo.db'}"
    demo_study = optuna.load_study(study_name="demo-mlp", storage=storage_url)
    build_report(demo_study).push_to_dashboard(demo_study)
    companion = _companion_study(demo_study._storage, demo_study)
    with _dashboard_server(storage_url, tmp_path) as base:
        yield base, demo_study, companion


@pytest.mark.timeout(240)
def test_dashboard_shows_trials_and_pushed_figures(browser, dashboard) -> None:
    """Check that optuna-dashboard names the metric, shows every pushed figure titled in report order, the note
    and the trials, with no error toast or console error."""
    base, study, _ = dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, _ = watch_page(page)
    page.goto(f"{base}/dashboard/studies/{study._study_id}")
    report = build_report(study)
    shown = [(n, f) for n, f in enumerate(report.figures, start=1) if f.drawable]
    # optuna-dashboard draws each pushed figure in a div with id "user-defined-plot:<graph object id>".
    pushed = [f"user-defined-plot:{graph_object_id(f, n)}" for n, f in shown]
    page.wait_for_function(
        "ids => ids.every(id => document.getElementById(id)?.querySelector('.main-svg'))", arg=pushed, timeout=60_000
    )
    order = page.evaluate("Array.from(document.querySelectorAll('[id^=\"user-defined-plot:\"]')).map(d => d.id)")
    assert order == pushed
    for n, f in shown:
        assert page.locator(".gtitle", has_text=f"{n}. {f.title}").first.is_visible(), f.title
    assert page.get_by_text("val accuracy").count() > 0 and page.get_by_text("Objective 0").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-study.png"), full_page=True)
    page.goto(f"{base}/dashboard/studies/{study._study_id}/note")
    page.get_by_text(f"archsearch report: {study.study_name}").first.wait_for(timeout=30_000)
    assert page.get_by_text("Where the archsearch figures are").count() > 0
    page.screenshot(path=str(ARTIFACTS / "dashboard-note.png"), full_page=True)
    page.goto(f"{base}/dashboard/studies/{study._study_id}/trials")
    # The list is virtualized, so the count header stands for the rows further down.
    page.get_by_text(f"{len(study.trials)} Trials", exact=True).wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-trials.png"), full_page=True)
    assert page.get_by_text("Trial 0", exact=True).count() > 0
    assert page.get_by_text("Pruned", exact=True).count() > 0
    assert page.get_by_text("Failed to").count() == 0 and errors == []


@pytest.mark.timeout(180)
def test_dashboard_opens_the_sensitivity_companion_without_errors(browser, dashboard) -> None:
    """Check that the companion study loads with its metric named, its note and no importance error toast."""
    base, _, companion = dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, _ = watch_page(page)
    page.goto(f"{base}/dashboard/studies/{companion._study_id}")
    page.get_by_text("val accuracy").first.wait_for(timeout=30_000)
    # The importance card loads after the page; give a failing request time to raise its toast.
    page.wait_for_timeout(3000)
    assert page.get_by_text("Failed to").count() == 0 and errors == []
    page.goto(f"{base}/dashboard/studies/{companion._study_id}/note")
    page.get_by_text("What this study holds").first.wait_for(timeout=30_000)


@pytest.mark.timeout(300)
def test_dashboard_draws_the_pareto_front_of_a_multi_objective_search(browser, tmp_path: Path) -> None:
    """Check that optuna-dashboard's Pareto-front view of an archsearch multi-objective study names both axes
    with the study's metric names (not "Objective 0" and "Objective 1"), with no error toast or console error."""
    from archsearch.config import SearchConfig
    from archsearch.controller import run_search

    storage_url = f"sqlite:///{tmp_path / 'front.db'}"
    config = SearchConfig.from_dict(
        {
            "study": {"name": "front", "storage": storage_url, "n_trials": 4, "objectives": ["accuracy", "params"]},
            "data": {"dataset": "wine"},
            "space": {"layers": [0, 2], "width": [8, 64], "recipe_baseline": False},
            "train": {"epochs": 3},
        }
    )
    study = run_search(config)
    assert study.metric_names == ["val accuracy", "params"]
    with _dashboard_server(storage_url, tmp_path) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors, _ = watch_page(page)
        page.goto(f"{base}/dashboard/studies/{study._study_id}")
        page.wait_for_function("document.querySelector('#graph-pareto-front .main-svg')", timeout=60_000)
        card = page.locator(".MuiCard-root", has=page.locator("#graph-pareto-front"))
        # The card's two axis pickers name the objectives by the study's metric names, in objective order.
        assert card.get_by_text("Pareto Front", exact=True).count() == 1
        assert card.get_by_role("combobox").all_inner_texts() == ["val accuracy", "params"]
        assert page.get_by_text("Objective 0").count() == 0 and page.get_by_text("Objective 1").count() == 0
        # One point per complete trial (the view leaves pruned trials out unless asked).
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert page.evaluate("document.querySelectorAll('#graph-pareto-front .point').length") == len(complete) > 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-pareto-front.png"), full_page=True)
        assert page.get_by_text("Failed to").count() == 0 and errors == []
