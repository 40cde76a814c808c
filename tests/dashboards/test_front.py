"""The size front in the report (dashboards/_front.py): figure, hypervolume, table; old studies say why not."""

from __future__ import annotations

import optuna
import pytest

from archsearch.dashboards import build_report
from archsearch.storage import keys

from ..conftest import make_trial


def _sized(widths: list[int], value: float, params: int, *, latency: float = 0.01, infeasible: bool = False):
    trial = make_trial(widths=widths, value=value)
    attrs = {**trial.user_attrs, keys.SIZE_PARAMS: params, keys.SIZE_FLOPS: 2 * params, keys.LATENCY_MS: latency}
    if infeasible:
        attrs[keys.INFEASIBLE] = "latency 9 ms > [study] max_latency_ms 1"
    return optuna.trial.create_trial(
        state=trial.state,
        values=[value, params],
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=attrs,
    )


@pytest.fixture
def front_study(tmp_path) -> optuna.Study:
    study = optuna.create_study(
        study_name="front", storage=f"sqlite:///{tmp_path}/f.db", directions=["maximize", "minimize"]
    )
    study.set_user_attr(keys.METRIC, "accuracy")
    study.set_user_attr(keys.CONFIG, {"study": {"objectives": ["accuracy", "params"]}})
    for trial in (
        _sized([], 0.90, 650),  # the linear model
        _sized([16], 0.95, 1210),
        _sized([64], 0.97, 4810),
        _sized([64, 64], 0.968, 8970),  # dominated
        _sized([256], 0.975, 19210),
        _sized([512, 512], 0.99, 300_000, infeasible=True),  # faster than nothing: never on the front
    ):
        study.add_trial(trial)
    return study


def test_the_report_draws_the_front_with_knee_linear_model_and_hypervolume(front_study: optuna.Study) -> None:
    report = build_report(front_study, knee_tolerance=0.01)
    figures = {f.key: f for f in report.figures}
    front = figures["size_front"]
    assert front.drawable and "1 trial over [study] max_latency_ms is infeasible" in front.caption
    assert "parameters: trial #2" in front.caption.replace("size_params", "parameters")  # knee: 0.97 within 0.01
    assert figures["size_hypervolume"].drawable
    table = next(t for t in report.tables if t.key == "size_front").frame
    assert list(table["trial"]) == [0, 1, 2, 4]
    assert list(table["role"]) == ["linear model", "", "knee", ""]


def test_a_study_without_sizes_keeps_its_report_and_says_why_there_is_no_front(demo_study: optuna.Study) -> None:
    from archsearch.dashboards._front import front_figure
    from archsearch.stats import load_study_data

    report = build_report(demo_study)
    assert "size_front" not in {f.key for f in report.figures} | {t.key for t in report.tables}
    figure = front_figure(load_study_data(demo_study), 0.005)
    assert not figure.drawable and "trials before 2026-12-07 stored none" in figure.reason


def test_importance_reads_the_quality_of_a_multi_objective_study(tmp_path) -> None:
    from archsearch.dashboards._importance import importance_table
    from archsearch.stats import load_study_data

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/i.db", directions=["maximize", "minimize"])
    study.set_user_attr(keys.METRIC, "accuracy")
    for i in range(24):
        width = 8 * (1 + i % 6)
        study.add_trial(_sized([width], 0.8 + 0.02 * (i % 6) + 0.001 * i, 100 * width))
    table = importance_table(study, load_study_data(study))
    assert not table.empty and table["importance"].notna().all()


def test_an_infeasible_trial_is_never_the_reports_best(front_study: optuna.Study) -> None:
    report = build_report(front_study, knee_tolerance=0.01)
    notable = report.tables[0].frame
    best = notable[notable["role"] == "best"].iloc[0]
    assert int(best["trial"]) == 4  # 0.975; trial 5 (0.99) is over max_latency_ms
