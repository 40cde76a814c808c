"""Shared fixtures: database servers from the environment (skipped, or failed in CI, when absent) and hand-made studies."""

from __future__ import annotations

import datetime
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import optuna
import pytest

POSTGRES_URL = os.environ.get("ARCHSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("ARCHSEARCH_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture(scope="session", autouse=True)
def dataset_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The built-in datasets' array cache of this session (worker processes inherit it), not the user's."""
    folder = tmp_path_factory.mktemp("archsearch-cache")
    before = os.environ.get("ARCHSEARCH_CACHE_DIR")
    os.environ["ARCHSEARCH_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        del os.environ["ARCHSEARCH_CACHE_DIR"]
    else:
        os.environ["ARCHSEARCH_CACHE_DIR"] = before


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
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium for the session (each test opens its own pages), skipped when not installed
    unless ARCHSEARCH_REQUIRE_SERVICES=1."""
    if not CHROMIUM.exists():
        if os.environ.get("ARCHSEARCH_REQUIRE_SERVICES") == "1":
            pytest.fail(
                f"{CHROMIUM} is missing and ARCHSEARCH_REQUIRE_SERVICES=1: install it (apt-get install chromium)."
            )
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


# Hand-made studies for the report and statistics tests (tests/dashboards, tests/stats).
N_FEATURES, N_OUTPUTS = 10, 3
_MAX_DEPTH = 3

optuna.logging.set_verbosity(optuna.logging.WARNING)


def n_params(widths: Sequence[int], n_in: int = N_FEATURES, n_out: int = N_OUTPUTS) -> int:
    """Trainable parameters of an MLP (weights and biases) with these hidden widths."""
    sizes = [n_in, *widths, n_out]
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


def _shape(widths: Sequence[int]) -> str:
    # Independent of the code under test on purpose; only the unambiguous cases are needed here.
    if not widths:
        return "linear"
    if len(widths) == 1:
        return "single"
    if len(set(widths)) == 1:
        return "uniform"
    if list(widths) == sorted(widths, reverse=True):
        return "funnel"
    if list(widths) == sorted(widths):
        return "expanding"
    return "irregular"


def make_trial(
    *,
    widths: Sequence[int],
    value: float | None,
    dropouts: Sequence[float] | None = None,
    state: optuna.trial.TrialState = optuna.trial.TrialState.COMPLETE,
    metric: str = "accuracy",
    curve: Sequence[float] | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    seed_group: str | None = None,
    baseline: str | None = None,
    train_seconds: float = 10.0,
    test_value: float | None = None,
) -> optuna.trial.FrozenTrial:
    """One trial with the parameters, user attributes and intermediate values the controller writes."""
    depth = len(widths)
    dropouts = list(dropouts) if dropouts is not None else [0.0] * depth
    dist = optuna.distributions
    params: dict = {"n_layers": depth, "lr": lr, "batch_size": 64, "optimizer": "adam"}
    distributions: dict = {
        "n_layers": dist.IntDistribution(0, _MAX_DEPTH),
        "lr": dist.FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": dist.CategoricalDistribution([32, 64, 128]),
        "optimizer": dist.CategoricalDistribution(["adam", "sgd"]),
    }
    for i, (w, d) in enumerate(zip(widths, dropouts)):
        params[f"width_{i}"], distributions[f"width_{i}"] = w, dist.IntDistribution(4, 512, log=True)
        params[f"dropout_{i}"], distributions[f"dropout_{i}"] = d, dist.FloatDistribution(0.0, 0.5, step=0.1)
    if depth:
        params["activation"], distributions["activation"] = "relu", dist.CategoricalDistribution(["relu", "gelu"])
    curve = list(curve) if curve is not None else ([value] * 5 if value is not None else [])
    attrs: dict = {"seed": seed, "device": "cpu", "epochs_run": len(curve), "train_seconds": train_seconds}
    if seed_group is not None:
        attrs["seed_group"] = seed_group
    if state == optuna.trial.TrialState.COMPLETE:
        attrs |= {
            "widths": list(widths),
            "dropouts": dropouts,
            "activation": "relu" if depth else None,
            "depth": depth,
            "total_units": sum(widths),
            "n_params": n_params(widths),
            "layer_shape": _shape(widths),
            "best_epoch": int(np.argmax(curve)) + 1 if curve else 0,
            f"val_{metric}": value,
            f"test_{metric}": value - 0.01 if test_value is None else test_value,
        }
    if baseline is not None:
        attrs["baseline"] = baseline
    if state == optuna.trial.TrialState.PRUNED:
        attrs["pruned_reason"] = "MedianPruner"
    if state == optuna.trial.TrialState.FAIL:
        attrs["fail_reason"] = "RuntimeError: CUDA out of memory"
    return optuna.trial.create_trial(
        state=state,
        value=value if state == optuna.trial.TrialState.COMPLETE else None,
        params=params,
        distributions=distributions,
        user_attrs=attrs,
        intermediate_values={step: v for step, v in enumerate(curve, start=1)},
    )


def new_study(path: Path, *, metric: str = "accuracy", name: str = "hand-made") -> optuna.Study:
    """An empty SQLite study with the study user attributes of an archsearch study."""
    direction = "minimize" if metric in ("rmse", "log_loss") else "maximize"
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name=name, direction=direction)
    task = "regression" if metric in ("rmse", "r2") else "classification"
    study.set_user_attr("metric", metric)
    study.set_user_attr("task", task)
    study.set_user_attr(
        "data",
        {
            "name": "synthetic",
            "n_features": N_FEATURES,
            "n_outputs": N_OUTPUTS,
            "n_train": 800,
            "n_val": 100,
            "n_test": 100,
        },
    )
    return study


def realistic_study(path: Path, name: str = "demo-mlp") -> optuna.Study:
    """About 40 accuracy trials over depths 0-3, with pruned, failed and repeated-seed trials.

    Accuracy rises with size and saturates, dropout helps only large nets, and a few repeats with
    different seeds share a ``seed_group``, so every figure has something to say.
    """
    rng = np.random.default_rng(7)
    study = new_study(path, name=name)
    study.add_trial(make_trial(widths=[], value=0.781, baseline="linear", curve=_curve(rng, 0.781, 20)))
    choices = [8, 16, 32, 64, 128, 256]
    for number in range(1, 42):
        depth = int(rng.integers(0, 4))
        widths = sorted(rng.choice(choices, size=depth).tolist(), reverse=bool(rng.integers(0, 2)))
        if depth >= 2 and rng.random() < 0.35:
            widths = [widths[0]] * depth
        dropouts = [float(rng.choice([0.0, 0.0, 0.1, 0.2, 0.3])) for _ in widths]
        size = n_params(widths)
        capacity = 0.78 + 0.13 * (1 - np.exp(-size / 700))
        regularized = 0.012 * np.mean(dropouts) / 0.3 if size > 8000 and dropouts else -0.01 * np.mean(dropouts or [0])
        acc = float(np.clip(capacity + regularized + rng.normal(0, 0.006), 0, 1))
        state = optuna.trial.TrialState.COMPLETE
        if number % 9 == 4:
            state = optuna.trial.TrialState.PRUNED
        elif number == 23:
            state = optuna.trial.TrialState.FAIL
        epochs = 20 if state == optuna.trial.TrialState.COMPLETE else int(rng.integers(3, 9))
        curve = _curve(rng, acc - (0.05 if state == optuna.trial.TrialState.PRUNED else 0.0), epochs)
        study.add_trial(
            make_trial(
                widths=widths,
                dropouts=dropouts,
                value=acc,
                state=state,
                curve=curve,
                lr=float(10 ** rng.uniform(-3.5, -1.5)),
                seed=number,
                train_seconds=0.2 * epochs + size / 2e4,
            )
        )
    # Repeats of two settings with different seeds: the seed-to-seed spread.
    for group, widths, acc in (("g-small", [16], 0.86), ("g-large", [128, 128], 0.905)):
        for seed in range(3):
            value = acc + float(rng.normal(0, 0.003))
            study.add_trial(
                make_trial(widths=widths, value=value, seed=100 + seed, seed_group=group, curve=_curve(rng, value, 20))
            )
    return study


def _curve(rng: np.random.Generator, final: float, epochs: int) -> list[float]:
    steps = np.arange(1, epochs + 1)
    return (final - 0.25 * np.exp(-steps / 3) + rng.normal(0, 0.002, epochs)).tolist()


@pytest.fixture
def study_factory(tmp_path: Path) -> Callable[..., optuna.Study]:
    """Make empty archsearch-like studies in a temporary SQLite file."""
    counter = iter(range(1000))

    def factory(metric: str = "accuracy") -> optuna.Study:
        return new_study(tmp_path / f"study{next(counter)}.db", metric=metric)

    return factory


@pytest.fixture(scope="session")
def _demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo study's SQLite file, written once: some 700 single-row writes take seconds on a busy machine."""
    path = tmp_path_factory.mktemp("demo-template") / "demo.db"
    realistic_study(path)
    return path


@pytest.fixture
def demo_study(tmp_path: Path, _demo_database: Path) -> optuna.Study:
    """The realistic ~45-trial study used for the browser tests and docs/report.png, a fresh copy per test."""
    shutil.copyfile(_demo_database, tmp_path / "demo.db")
    return optuna.load_study(study_name="demo-mlp", storage=f"sqlite:///{tmp_path / 'demo.db'}")


@pytest.fixture
def trial_maker() -> Callable[..., optuna.trial.FrozenTrial]:
    """The :func:`make_trial` builder, for tests that lay out their own trials."""
    return make_trial


def backdate_trial(url: str, trial_id: int, seconds: float) -> None:
    """Move a trial's start and its last heartbeat `seconds` into the past, as if its worker went quiet then.

    Tests of stale-trial handling use this instead of sleeping past a grace period.
    """
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            for table, column in (("trials", "datetime_start"), ("trial_heartbeats", "heartbeat")):
                rows = connection.execute(
                    sqlalchemy.text(f"SELECT {column} FROM {table} WHERE trial_id = :id"), {"id": trial_id}
                ).all()
                for (value,) in rows:
                    if value is None:
                        continue
                    if isinstance(value, str):  # SQLite hands datetimes back as text
                        value = datetime.datetime.fromisoformat(value)
                    connection.execute(
                        sqlalchemy.text(f"UPDATE {table} SET {column} = :at WHERE trial_id = :id"),
                        {"at": value - datetime.timedelta(seconds=seconds), "id": trial_id},
                    )
    finally:
        engine.dispose()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds (for other processes' progress)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")
