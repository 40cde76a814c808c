"""The report: a written summary, the figures and the table of notable trials, as HTML or in the dashboard."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pandas as pd

import archsearch.stats as an
from archsearch.dashboards import _front as front_figs
from archsearch.dashboards import _overview_figures as overview_figs
from archsearch.dashboards import _size_figures as size_figs
from archsearch.dashboards import _training_figures as training_figs
from archsearch.dashboards._base import ReportError, ReportFigure, describe, format_cell
from archsearch.stats import format_number
from archsearch.storage import epoch_budget, keys, name_metric, size_objectives, stored_value

if TYPE_CHECKING:
    import plotly.graph_objects as go


# The search's own linear model, named apart from the sensitivity analysis's "linear model with the centre's
# hyperparameters" (archsearch.spaces.LINEAR_NEIGHBOUR).
LINEAR_BASELINE = "tuned linear baseline (best 0-layer trial)"
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

    def push_to_dashboard(self, study: optuna.Study, *, preface: str | None = None) -> list[str]:
        """Save the drawable figures and the summary into the study for optuna-dashboard.

        Figures are saved with ``optuna_dashboard.save_plotly_graph_object`` under ids
        ``archsearch_<NN>_<key>`` (``NN`` the figure's number), so pushing again replaces them and
        `launch_dashboard` shows them in report order. Each is titled with its number and laid out for
        the dashboard's half-width card; the study's metric is named (``val <metric>``). The study's note (``save_note``) says where the figures are,
        carries the first table (best, knee, linear baseline) and every caption under the same number.

        Args:
            study: The study the report was built from, opened on its storage.
            preface: Markdown put first in the note, e.g. what the study's trials are.

        Returns:
            The graph object ids saved, in report order.
        """
        from optuna_dashboard import save_note, save_plotly_graph_object

        if keys.METRIC in study.user_attrs:
            # Studies made before archsearch named their metric say "Objective 0" in the dashboard.
            name_metric(study, study.user_attrs[keys.METRIC], size_objectives(study))
        ids = [
            save_plotly_graph_object(study, card_figure(entry, number), graph_object_id=graph_object_id(entry, number))
            for number, entry in enumerate(self.figures, start=1)
            if entry.figure is not None
        ]
        notes = [
            f"### {number}. {entry.title}\n\n{entry.caption}" for number, entry in enumerate(self.figures, start=1)
        ]
        where = (
            f"archsearch's {len(ids)} figures are on this study's main page, below Optuna's own plots, titled "
            "with their numbers in report order (`archsearch dashboard` lists them in that order). Their captions "
            "follow, under the same numbers; a figure the study cannot support is listed with the reason."
        )
        parts = [preface] if preface else []
        parts += [self.summary, "## Where the archsearch figures are", where]
        for table in self.tables[:1]:
            parts += [f"## {table.title}", markdown_table(table.frame) if not table.frame.empty else "", table.caption]
        save_note(study, "\n\n".join([*parts, "## archsearch figures", *notes]))
        return ids


def graph_object_id(entry: ReportFigure, number: int) -> str:
    """The optuna-dashboard id of a figure: ``archsearch_01_metric_vs_depth``; sorting the ids gives report order."""
    return f"archsearch_{number:02d}_{entry.key}"


def card_figure(entry: ReportFigure, number: int) -> go.Figure:
    """A copy of the figure for the dashboard's half-width card: numbered title, legend below, small subplot titles."""
    import plotly.graph_objects as go

    fig = go.Figure(entry.figure)
    fig.update_layout(
        title={"text": f"{number}. {entry.title}", "font": {"size": 14}},
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        margin={"l": 55, "r": 15, "t": max(55, fig.layout.margin.t or 0), "b": 110},
        height=max(480, fig.layout.height or 0),
    )
    # Subplot titles are annotations; at half width their default size runs them together.
    fig.update_annotations(font_size=10)
    return fig


def markdown_table(frame: pd.DataFrame) -> str:
    """A table in Markdown with the report's number style (metrics to 4 decimals, counts with separators)."""

    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(format_cell(v) for v in row) + " |" for row in frame.astype(object).itertuples(index=False)
    ]
    return "\n".join([head, rule, *rows])


def build_report(study: optuna.Study, *, knee_tolerance: float | None = None) -> Report:
    """Build the report of an archsearch study.

    Args:
        study: A study laid out as ``docs/STUDY_LAYOUT.md`` describes (any number of trials).
        knee_tolerance: How far below the best (above, when minimizing) the knee may be, in metric
            units; default: 0.005 (half a point of accuracy), or for RMSE 0.005 times the target's
            standard deviation (`knee_tolerance_for`).

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
    if knee_tolerance is not None and not (knee_tolerance >= 0 and math.isfinite(knee_tolerance)):
        raise ReportError(f"The 'knee_tolerance' parameter must be a finite number >= 0. Got {knee_tolerance} instead.")
    data = an.load_study_data(study)
    if knee_tolerance is None:
        knee_tolerance = _default_knee_tolerance(study, data)
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
        overview_figs.best_so_far(data),
        overview_figs.parallel_coordinates(study, data),
    ]
    tables = [_notable_trials_table(data, knee_tolerance), _all_trials_table(data)]
    if data.trials["size_params"].notna().any():  # studies before sizes were stored keep their report as it was
        figures += [front_figs.front_figure(data, knee_tolerance), front_figs.hypervolume_figure(data)]
        tables.append(ReportTable("size_front", *front_figs.front_table(data, knee_tolerance)))
    summary = _summary(data, knee_tolerance, figures)
    budget = epoch_budget(study)
    if budget is not None and budget.too_short:
        summary += f"\n- {budget.hint()}"
    return Report(study.study_name, summary, figures, tables)


def notable_trials(study: optuna.Study, *, knee_tolerance: float | None = None) -> pd.DataFrame:
    """Tabulate the best trial, the knee and the linear baseline with sizes and metrics (table 9).

    Args:
        study: The study.
        knee_tolerance: Tolerance of the knee, in metric units; default as in `build_report`.

    Returns:
        One row per role (``best``, ``knee (within ...)``, :data:`LINEAR_BASELINE`) present in the study.
    """
    data = an.load_study_data(study)
    knee_tolerance = _default_knee_tolerance(study, data) if knee_tolerance is None else knee_tolerance
    return _notable_trials_table(data, knee_tolerance).frame


def _default_knee_tolerance(study: optuna.Study, data: an.StudyData) -> float:
    preprocessing = stored_value(study.user_attrs, keys.PREPROCESSING) or {}
    scale = preprocessing.get("target_scale") if preprocessing.get("task") == "regression" else None
    return an.knee_tolerance_for(data.metric, scale)


def _notable_trials_table(data: an.StudyData, knee_tolerance: float) -> ReportTable:
    rows = []
    knee = an.find_knee(data, knee_tolerance)
    done = data.complete
    if not done.empty:
        best = (
            (data.feasible if not data.feasible.empty else done)
            .sort_values(["score", "number"], ascending=[False, True])
            .iloc[0]
        )
        rows.append(("best", best))
    if knee is not None:
        rows.append((f"knee (within {knee_tolerance:g})", done[done["number"] == knee.knee].iloc[0]))
    baseline = an.linear_baseline(data)
    if baseline is not None:
        rows.append((LINEAR_BASELINE, baseline))
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
        "The best trial, the knee (smallest within the knee_tolerance of the best) and the linear baseline "
        "(0 hidden layers), with validation and test metric."
        if rows
        else "No trial finished, so there are no notable trials."
    )
    return ReportTable("notable_trials", "Best trial, knee and linear baseline", caption, frame)


def _all_trials_table(data: an.StudyData) -> ReportTable:
    frame = overview_figs.all_trials_frame(data)
    caption = (
        f"All {an.plural(len(frame), 'trial')} of the study; click a column's header to sort by it, again to "
        "reverse. Pruned and failed trials have no metric (n/a)."
    )
    return ReportTable("all_trials", "All trials", caption, frame)


def tolerance_words(metric: str, knee_tolerance: float) -> str:
    """``"0.005 accuracy (0.5 points)"`` for 0-1 metrics, ``"0.005 rmse (in the target's units)"`` else."""
    if metric in _POINT_METRICS:
        return f"{knee_tolerance:g} {metric} ({knee_tolerance * 100:g} points)"
    return f"{knee_tolerance:g} {metric} (in the metric's own units)"


def _summary(data: an.StudyData, knee_tolerance: float, figures: list[ReportFigure]) -> str:
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
        best = (
            (data.feasible if not data.feasible.empty else done)
            .sort_values(["score", "number"], ascending=[False, True])
            .iloc[0]
        )
        test = format_number(best["test_value"])
        lines.append(
            f"- Best: {describe(best)} with {data.metric} {format_number(best['value'])} (test {test}), "
            f"the best of {an.plural(len(done), 'finished trial')}."
        )
        knee = an.find_knee(data, knee_tolerance)
        if knee is not None:
            row = done[done["number"] == knee.knee].iloc[0]
            which = f"{describe(row)} with {format_number(row['value'])}."
            if knee.knee == knee.best:
                which = "the best trial itself."
            within = tolerance_words(data.metric, knee_tolerance)
            lines.append(f"- Knee, the smallest network within {within} of the best: {which}")
        baseline = an.linear_baseline(data)
        if baseline is not None:
            gain = best["score"] - baseline["score"]
            n_linear = int((done["depth"] == 0).sum())
            lines.append(
                f"- {LINEAR_BASELINE.capitalize()}: trial #{int(baseline['number'])} of "
                f"{an.plural(n_linear, '0-layer trial')}, {format_number(baseline['value'])}; the best network is "
                f"{format_number(gain)} " + ("better." if gain > 0 else "better: depth buys nothing here.")
            )
        if data.complete["depth"].nunique() > 1:
            lines.append(f"- Depth: {an.compare_depths(data).sentence()}.")
    skipped = [f.title for f in figures if not f.drawable]
    if skipped:
        lines.append(f"- Not drawn for this study (the reason is under each title): {', '.join(skipped)}.")
    return "\n".join(lines)
