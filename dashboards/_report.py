"""The report: a written summary, the figures and the table of notable trials, as HTML or in the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path

import optuna
import pandas as pd

import archsearch.stats as an
from archsearch.dashboards import _size_figures as size_figs
from archsearch.dashboards import _training_figures as training_figs
from archsearch.dashboards._base import depth_name
from archsearch.dashboards._base import describe
from archsearch.dashboards._base import fmt
from archsearch.dashboards._base import ReportFigure


# Metrics on a 0-1 scale where "points" (hundredths) is the everyday unit.
_POINT_METRICS = ("accuracy", "balanced_accuracy", "r2")


@dataclass
class ReportTable:
    """A table of the report.

    Attributes:
        key: Stable identifier.
        title: Short title.
        caption: What the table lists.
        frame: The rows; empty when there is nothing to list.
    """

    key: str
    title: str
    caption: str
    frame: pd.DataFrame


@dataclass
class Report:
    """A study's report: summary, figures in reading order, tables.

    Attributes:
        study_name: Name of the study reported on.
        summary: Short Markdown summary (a heading and bullet points).
        figures: Figures in reading order; undrawable ones carry a ``reason`` instead of a figure.
        tables: Tables, the notable trials first.
    """

    study_name: str
    summary: str
    figures: list[ReportFigure]
    tables: list[ReportTable]

    def write_html(self, path: str | Path) -> Path:
        """Write the report as one self-contained HTML file that opens offline.

        plotly.js is embedded once, so the file makes no network request.

        Args:
            path: Where to write, e.g. ``"report.html"``.

        Returns:
            The path written.
        """
        from archsearch.dashboards._html import render_html

        path = Path(path)
        path.write_text(render_html(self), encoding="utf-8")
        return path

    def push_to_dashboard(self, study: optuna.Study) -> list[str]:
        """Save the drawable figures and the summary into the study for optuna-dashboard.

        Figures are saved with ``optuna_dashboard.save_plotly_graph_object`` under ids
        ``archsearch_<key>``, so pushing again replaces them; the summary and every caption become the
        study's note (``save_note``).

        Args:
            study: The study the report was built from, opened on its storage.

        Returns:
            The graph object ids saved.
        """
        from optuna_dashboard import save_note
        from optuna_dashboard import save_plotly_graph_object

        ids = [
            save_plotly_graph_object(study, entry.figure, graph_object_id=f"archsearch_{entry.key}")
            for entry in self.figures
            if entry.figure is not None
        ]
        notes = [f"### {entry.title}\n\n{entry.caption}" for entry in self.figures]
        save_note(study, "\n\n".join([self.summary, "## archsearch figures", *notes]))
        return ids


def build_report(study: optuna.Study, *, knee_tolerance: float = 0.005) -> Report:
    """Build the report of an archsearch study.

    Args:
        study: A study laid out as ``docs/STUDY_LAYOUT.md`` describes (any number of trials).
        knee_tolerance: How far below the best (above, when minimizing) the knee may be, in metric
            units; 0.005 is half a point of accuracy.

    Returns:
        The report; figures the study cannot support carry a one-sentence reason.

    Raises:
        ValueError: If ``knee_tolerance`` is negative or the study has several objectives.

    Example:
        >>> import optuna
        >>> from archsearch.dashboards import build_report
        >>> study = optuna.load_study(study_name="demo", storage="sqlite:///demo.db")  # doctest: +SKIP
        >>> build_report(study).write_html("report.html")  # doctest: +SKIP
    """
    if not (knee_tolerance >= 0 and math.isfinite(knee_tolerance)):
        raise ValueError(
            f"The 'knee_tolerance' parameter must be a finite number >= 0. Got {knee_tolerance} instead."
        )
    data = an.load_study_data(study)
    figures = [
        size_figs.metric_vs_depth(data),
        size_figs.metric_vs_params(data, knee_tolerance),
        size_figs.metric_vs_widths(data),
        size_figs.layer_shapes(data),
        training_figs.dropout_by_size(data, knee_tolerance),
        training_figs.spread_vs_size(data),
        training_figs.importance(study, data),
        training_figs.learning_curves(data),
        training_figs.pruning(data),
    ]
    tables = [_notable_trials_table(data, knee_tolerance)]
    return Report(study.study_name, _summary(data, knee_tolerance, figures), figures, tables)


def notable_trials(study: optuna.Study, *, knee_tolerance: float = 0.005) -> pd.DataFrame:
    """Tabulate the best trial, the knee and the linear baseline with sizes and metrics (table 9).

    Args:
        study: The study.
        knee_tolerance: Tolerance of the knee, in metric units.

    Returns:
        One row per role (``best``, ``knee (within ...)``, ``linear baseline``) present in the study.
    """
    return _notable_trials_table(an.load_study_data(study), knee_tolerance).frame


def _notable_trials_table(data: an.StudyData, tolerance: float) -> ReportTable:
    rows = []
    knee = an.find_knee(data, tolerance)
    done = data.complete
    if not done.empty:
        best = done.sort_values(["score", "number"], ascending=[False, True]).iloc[0]
        rows.append(("best", best))
    if knee is not None:
        rows.append((f"knee (within {tolerance:g})", done[done["number"] == knee.knee].iloc[0]))
    baseline = an.linear_baseline(data)
    if baseline is not None:
        rows.append(("linear baseline", baseline))
    frame = pd.DataFrame(
        [
            {
                "role": role,
                "trial": int(r["number"]),
                "depth": int(r["depth"]) if math.isfinite(r["depth"]) else None,
                "widths": list(r["widths"]) if r["widths"] is not None else None,
                "dropouts": [round(d, 3) for d in r["dropouts"]] if r["dropouts"] is not None else None,
                "params": int(r["n_params"]) if math.isfinite(r["n_params"]) else None,
                f"val {data.metric}": r["value"],
                f"test {data.metric}": r["test_value"],
            }
            for role, r in rows
        ]
    )
    caption = (
        "The best trial, the knee (smallest within the tolerance of the best) and the linear baseline "
        "(0 hidden layers), with validation and test metric."
        if rows
        else "No trial finished, so there are no notable trials."
    )
    return ReportTable("notable_trials", "Best trial, knee and linear baseline", caption, frame)


def tolerance_words(metric: str, tolerance: float) -> str:
    """``"0.005 accuracy (0.5 points)"`` for 0-1 metrics, ``"0.005 rmse (in the target's units)"`` else."""
    if metric in _POINT_METRICS:
        return f"{tolerance:g} {metric} ({tolerance * 100:g} points)"
    return f"{tolerance:g} {metric} (in the metric's own units)"


def _summary(data: an.StudyData, tolerance: float, figures: list[ReportFigure]) -> str:
    counts = data.trials["state"].value_counts()
    states = ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) or "none"
    better = "higher" if data.maximize else "lower"
    lines = [
        f"## archsearch report: {data.study_name}",
        "",
        f"- Metric: validation {data.metric}{f' ({data.task})' if data.task else ''}; {better} is better.",
        f"- Trials: {len(data.trials)} ({states}).",
    ]
    done = data.complete
    if done.empty:
        reasons = data.trials["fail_reason"].dropna()
        if not reasons.empty:
            lines.append(f"- No trial finished. Most common failure: {reasons.value_counts().index[0]}")
        else:
            lines.append("- No trial finished, so there is nothing to compare yet.")
    else:
        best = done.sort_values(["score", "number"], ascending=[False, True]).iloc[0]
        test = fmt(best["test_value"])
        lines.append(f"- Best: {describe(best)} with {data.metric} {fmt(best['value'])} (test {test}).")
        knee = an.find_knee(data, tolerance)
        if knee is not None:
            row = done[done["number"] == knee.knee].iloc[0]
            which = f"{describe(row)} with {fmt(row['value'])}."
            if knee.knee == knee.best:
                which = "the best trial itself."
            within = tolerance_words(data.metric, tolerance)
            lines.append(f"- Knee, the smallest network within {within} of the best: {which}")
        baseline = an.linear_baseline(data)
        if baseline is not None:
            gain = best["score"] - baseline["score"]
            lines.append(
                f"- Linear baseline (0 hidden layers): {fmt(baseline['value'])}; the best network is {fmt(gain)} "
                + ("better." if gain > 0 else "better: depth buys nothing here.")
            )
        depths = an.depth_summary(data)
        if len(depths) > 1:
            top = depths.iloc[(depths["best"] * (1 if data.maximize else -1)).argmax()]
            best_of = f"best {fmt(top['best'])} over {int(top['n'])} trials"
            lines.append(f"- Best depth: {depth_name(top['depth'])} ({best_of}).")
    skipped = [f.title for f in figures if not f.drawable]
    if skipped:
        lines.append(f"- Not drawn for this study (the reason is under each title): {', '.join(skipped)}.")
    return "\n".join(lines)
