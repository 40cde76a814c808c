"""Tests of the live status line: its content for a hand-made study, the terminal line and the plain fallback."""

from __future__ import annotations

import io
import re
import time

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.config import MAX_TRIALS
from archsearch.pool import PROGRESS_LEGEND, StatusWriter, legend_lines, progress_line
from archsearch.storage import keys


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _study_with_trials(trial_maker) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for widths, value, state in [
        ([64, 32], 0.97, TrialState.COMPLETE),
        ([], 0.91, TrialState.COMPLETE),
        ([8], None, TrialState.PRUNED),
        ([16], 0.95, TrialState.COMPLETE),
    ]:
        trial = trial_maker(widths=widths, value=value, state=state)
        trial.user_attrs[keys.WORKER] = "elsewhere:1/w0"
        study.add_trial(trial)
    return study


def test_progress_line_names_counts_best_last_and_eta(trial_maker) -> None:
    """Check that the status line gives the counts, the best and last trial with architectures, elapsed and ETA."""
    study = _study_with_trials(trial_maker)
    line = progress_line(study, 8, "accuracy", started=0.0, now=40.0)
    assert line.startswith("[archsearch] 4/8 trials (3 complete, 1 pruned, 0 failed, 0 running)")
    assert "best accuracy 0.9700 (#0: 64-32)" in line
    # Trials added by hand all end at once; the highest number is the latest.
    assert "last #3: 16: 0.9500" in line
    # 40 s for 4 trials, so 4 more take about 40 s.
    assert "40s elapsed, ETA 40s" in line
    assert line.endswith("| elsewhere/w0:4")


def test_progress_line_counts_only_finished_trials_against_the_total(trial_maker) -> None:
    """Check that failed trials are shown apart and not counted toward n_trials (a study at its total with two
    failures read "6/4 trials"), and that the ETA uses finished trials only."""
    study = _study_with_trials(trial_maker)
    for _ in range(2):
        failed = trial_maker(widths=[4], value=None, state=TrialState.FAIL)
        failed.user_attrs[keys.WORKER] = "elsewhere:1/w0"
        study.add_trial(failed)
    line = progress_line(study, 8, "accuracy", started=0.0, now=40.0)
    assert line.startswith("[archsearch] 4/8 trials (3 complete, 1 pruned, 2 failed, 0 running)"), line
    assert "40s elapsed, ETA 40s" in line
    assert progress_line(study, 4, "accuracy", started=0.0, now=40.0).startswith("[archsearch] 4/4 trials")


def test_progress_line_without_a_trial_count_shows_the_time_to_the_timeout(trial_maker) -> None:
    """Check that a search bounded only by its timeout shows trials done and the time left, not "4/1000000"."""
    study = _study_with_trials(trial_maker)
    line = progress_line(study, MAX_TRIALS, "accuracy", started=0.0, now=40.0, deadline=time.time() + 125)
    assert line.startswith("[archsearch] 4 trials (3 complete, 1 pruned, 0 failed, 0 running)")
    assert re.search(r"40s elapsed, timeout in 2m 0[345]s", line), line


def test_progress_line_names_sensitivity_runs_by_neighbour_and_seed(trial_maker) -> None:
    """Check that a companion study's runs read "neighbour i/N, seed j/R", not trial numbers."""
    import archsearch.kinds  # noqa: F401  (registers the sensitivity kind, as the controller does)

    study = optuna.create_study(direction="maximize")
    study.set_user_attr(keys.KIND, keys.SENSITIVITY_KIND)
    for seed in (0, 1):
        for key, widths, gain in (("centre", [32], 0.0), ("w0+1", [33], 0.002), ("linear", [], 0.001)):
            trial = trial_maker(widths=widths, value=0.9 + 0.01 * seed + gain)
            trial.user_attrs |= {keys.CENTRE_TRIAL: 7, "key": key, keys.SEED: seed}
            study.add_trial(trial)
    line = progress_line(study, 6, "accuracy", started=0.0, now=1.0)
    assert "best accuracy 0.9120 (neighbour 2/3, seed 2/2: 33)" in line
    assert "last neighbour 3/3, seed 2/2: linear: 0.9110" in line


def test_status_writer_rewrites_one_line_on_a_terminal(trial_maker) -> None:
    """Check that a terminal gets the legend once, then one line rewritten with \\r, ended by close()."""
    stream = _Terminal()
    status = StatusWriter(stream)
    status.update("[archsearch] 1/2 trials | 1s elapsed")
    status.update("[archsearch] 1/2 trials | 2s elapsed")
    status.close()
    text = stream.getvalue()
    assert text.count("\n".join(legend_lines(status.width))) == 1
    assert text.count("\r") == 2 and text.endswith("2s elapsed\x1b[K\n")


def test_status_writer_prints_plain_lines_when_not_a_terminal() -> None:
    """Check that a pipe or file gets a new plain line only when more than the clock changed."""
    stream = io.StringIO()
    status = StatusWriter(stream)
    status.update("[archsearch] 1/2 trials | 1s elapsed, ETA 1s | w0:1")
    status.update("[archsearch] 1/2 trials | 2s elapsed, ETA 2s | w0:1")
    status.update("[archsearch] 2/2 trials | 3s elapsed | w0:2")
    status.message("[archsearch] warning: w1 exited 1")
    status.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        PROGRESS_LEGEND,
        "[archsearch] 1/2 trials | 1s elapsed, ETA 1s | w0:1",
        "[archsearch] 2/2 trials | 3s elapsed | w0:2",
        "[archsearch] warning: w1 exited 1",
    ]
    assert "\r" not in stream.getvalue()


def _busy_study(trial_maker) -> optuna.Study:
    """Long names everywhere: a wide best trial, a long metric, eight workers on another machine."""
    study = optuna.create_study(direction="maximize")
    for number, widths in enumerate([[512, 384, 256], [], [256, 256, 256], [128, 64, 32]] * 2):
        trial = trial_maker(widths=widths, value=0.9 + number / 100, metric="balanced_accuracy")
        trial.user_attrs[keys.WORKER] = f"gpu-node-{number}:4242/w{number}"
        study.add_trial(trial)
    return study


@pytest.mark.parametrize("width", [80, 60])
def test_progress_line_fits_the_terminal_dropping_the_least_useful_first(trial_maker, width: int) -> None:
    """Check that at 80 and 60 columns no status or legend line is wider than the terminal, that at 80 the best
    value, elapsed time and ETA survive (the issue's line was cut at 79 and lost them), and that the workers and
    the last trial give way first (issue #23 item 7)."""
    study = _busy_study(trial_maker)
    full = progress_line(study, 30, "balanced_accuracy", started=0.0, now=400.0)
    assert len(full) > 150 and "gpu-node-7/w7:1" in full
    line = progress_line(study, 30, "balanced_accuracy", started=0.0, now=400.0, width=width)
    assert len(line) <= width, line
    assert "best balanced_accuracy 0.9700" in line and "ETA 18m 20s" in line and "8/30 trials" in line
    assert "w7:1" not in line and "last #" not in line
    if width == 80:
        assert line == "8/30 trials | best balanced_accuracy 0.9700 | 6m 40s elapsed, ETA 18m 20s"
    wide = progress_line(study, 30, "accuracy", started=0.0, now=400.0, width=110)
    # With room for more, the dropped fields that fit come back, the most useful first; the counts by state
    # leave out the zeros before going altogether.
    assert (
        wide
        == "[archsearch] 8/30 trials (8 complete) | best accuracy 0.9700 (#7: 128-64-32) | 6m 40s elapsed, ETA 18m 20s"
    )
    assert all(len(row) <= width for row in legend_lines(width))
    assert " ".join(row.strip() for row in legend_lines(width)) == PROGRESS_LEGEND
    assert legend_lines(None) == [PROGRESS_LEGEND] and legend_lines(200) == [PROGRESS_LEGEND]


def test_status_writer_fits_legend_and_line_to_the_terminal(trial_maker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that on an 80-column terminal every row the writer draws is at most 79 characters (the cursor's
    column left free) and off a terminal the line stays whole for the log."""
    monkeypatch.setenv("COLUMNS", "80")
    study = _busy_study(trial_maker)
    stream = _Terminal()
    status = StatusWriter(stream)
    assert status.width == 79
    status.update(progress_line(study, 30, "balanced_accuracy", started=0.0, now=400.0, width=status.width))
    status.close()
    rows = [row.replace("\x1b[K", "") for row in re.split(r"[\r\n]", stream.getvalue())]
    assert max(len(row) for row in rows) <= 79 and any("ETA 18m 20s" in row for row in rows)
    assert StatusWriter(io.StringIO()).width is None
