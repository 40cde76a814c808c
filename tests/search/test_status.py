"""Tests of the trial counts that `search`, `worker` and `status` print."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from archsearch.status import counts_line, trial_counts
from archsearch.storage import keys


def _study(surplus: int) -> optuna.Study:
    study = optuna.create_study(study_name="s", direction="maximize")
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.9))
    study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={1: 0.5}))
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={keys.FAIL_REASON: "RuntimeError: boom"}))
    for _ in range(surplus):
        study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={keys.NOT_RUN: True}))
    return study


def test_surplus_claims_are_counted_apart_from_failures() -> None:
    """Check that a trial claimed as the total was reached (FAIL with not_run) is no failed trial, and is said once."""
    counts, surplus = trial_counts(_study(2))
    assert (counts["COMPLETE"], counts["PRUNED"], counts["FAIL"], surplus) == (1, 1, 1, 2)
    assert counts_line(_study(1)) == (
        "Study 's': 1 complete, 1 pruned, 1 failed trials (and 1 surplus claim that trained nothing)."
    )
    assert counts_line(_study(0)) == "Study 's': 1 complete, 1 pruned, 1 failed trials."


def test_status_and_search_end_say_when_test_disagrees(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that `archsearch status` and the last lines of `archsearch search` show validation and test with their
    rows beside the linear baseline, and the one sentence when the linear model is better on test (issue #23)."""
    from archsearch.cli import main

    from ..stats.test_best import DISAGREES, diabetes_like

    url = f"sqlite:///{tmp_path}/s.db"
    study = diabetes_like(tmp_path / "s.db")
    assert main(["status", "--storage", url, "--study", "diabetes"]) == 0
    status = capsys.readouterr().out
    assert "linear baseline      0" in status and "100 rows   100 rows" in status
    assert DISAGREES in " ".join(status.split()) and "`[data] folds = 5` (validating" in " ".join(status.split())

    config = tmp_path / "c.toml"
    config.write_text(f'[study]\nname = "diabetes"\nstorage = "{url}"\n[data]\ndataset = "diabetes"\n', "utf-8")
    monkeypatch.setattr("archsearch.controller.run_search", lambda *args, **kwargs: study)
    assert main(["search", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Best trial 1: val rmse 48.2900, test rmse 59.6900" in out and "Best linear model trial 0" in out
    assert "100 rows   100 rows" in out and DISAGREES in " ".join(out.split())
    assert "the best of 3 trials" in " ".join(out.split())


def test_status_top_lists_the_best_trials_as_a_table(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that `status --top 2` lists the 2 best trials best first, with architecture, parameters, validation and
    test metric, epochs and time, in 80 columns even for a long architecture (issue #23 item 9)."""
    from archsearch.cli import main

    from ..conftest import make_trial, n_params
    from ..stats.test_best import diabetes_like

    monkeypatch.setenv("COLUMNS", "80")
    study = diabetes_like(tmp_path / "s.db")
    long = [512, 384, 256]
    study.add_trial(
        make_trial(widths=long, dropouts=[0.3] * 3, value=49.0, test_value=58.5, metric="rmse", train_seconds=125)
    )
    assert main(["status", "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "diabetes", "--top", "2"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("The best 2 trials of 4 completed trials, by validation rmse:") :].splitlines()
    assert table[1].split() == [
        "rank",
        "trial",
        "architecture",
        "params",
        "val",
        "rmse",
        "test",
        "rmse",
        "epochs",
        "time",
    ]
    assert table[2].split() == ["1", "1", "64-64", "relu", f"{n_params([64, 64]):,}", "48.2900", "59.6900", "5", "10s"]
    assert table[3].split()[:3] == ["2", "3", "512-384-256"] and table[3].endswith("58.5000       5  2m 05s")
    assert len(table) == 4 and [line for line in out.splitlines()[1:] if len(line) > 80] == []
    assert "..." in table[3]  # the dropouts did not fit; the architecture column gave way, the numbers stayed


@pytest.mark.parametrize("top", ["0", "-3"])
def test_status_top_must_be_at_least_one(tmp_path, top: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that `--top` below 1 is one line naming --top, exit 2."""
    from archsearch.cli import main

    assert main(["status", "--storage", f"sqlite:///{tmp_path}/none.db", "--study", "s", "--top", top]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archsearch: error: The '--top' option must be an int >= 1") and f"Got {top} instead" in err


def test_status_of_a_sensitivity_companion_compares_nothing(tmp_path) -> None:
    """Check that a companion study (seeds of chosen architectures, no search) gets no best-versus-linear verdict."""
    from archsearch.status import comparison_lines

    from ..stats.test_best import diabetes_like

    study = diabetes_like(tmp_path / "s.db")
    assert comparison_lines(study) != []
    study.set_user_attr(keys.KIND, keys.SENSITIVITY_KIND)
    assert comparison_lines(study) == []


@pytest.mark.parametrize(("slow", "said"), [(1, "1 complete trial over [study] max_latency_ms is"), (2, "2 complete")])
def test_the_front_lines_count_in_words(slow: int, said: str) -> None:
    """Check that `status` says "1 trial" for a front of one, and counts the infeasible trials the same way."""
    from archsearch.status import front_lines

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr(keys.METRIC, "accuracy")
    study.set_user_attr(keys.CONFIG, {"study": {"objectives": ["accuracy", "params"]}})
    study.add_trial(create_trial(values=[0.9, 42], user_attrs={keys.SIZE_PARAMS: 42}))
    for k in range(slow):  # better but over the latency budget: never on the front
        attrs = {keys.SIZE_PARAMS: 500 + k, keys.INFEASIBLE: "latency 9 ms > [study] max_latency_ms 1"}
        study.add_trial(create_trial(values=[0.95, 500 + k], user_attrs=attrs))
    lines = front_lines(study)
    assert lines[0] == "Pareto front of val accuracy and params: 1 trial"
    assert lines[-1].startswith(said)
