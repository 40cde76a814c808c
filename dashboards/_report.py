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
from archsearch.dashboards._base import ReportError, ReportFigure, ReportTable, describe, format_cell
from archsearch.dashboards._choices import choice_lines, depth_lines
from archsearch.dashboards._explanation import explanation_figures
from archsearch.stats import format_number
from archsearch.storage import epoch_budget, keys, name_metric, size_objectives

if TYPE_CHECKING:
    import plotly.graph_objects as go


# The search's own linear model, named apart from the sensitivity analysis's "linear model with the centre's
# hyperparameters" (archsearch.spaces.LINEAR_NEIGHBOUR).
LINEAR_BASELINE = "tuned linear baseline (best 0-layer trial)"
# Metrics on a 0-1 scale where "points" (hundredths) is the everyday unit.
_POINT_METRICS = ("accuracy", "balanced_accuracy", "r2")


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
    sized = data.trials["size_params"].notna().any()  # studies before sizes were stored keep their report
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
        *([front_figs.front_figure(data, knee_tolerance), front_figs.hypervolume_figure(data)] if sized else []),
        *explanation_figures(study),  # none until `archsearch explain` stores one
    ]
    comparison = an.compare_best(study, knee_tolerance=knee_tolerance, data=data)
    tables = [_notable_trials_table(comparison), _all_trials_table(data)]
    if sized:
        tables.append(ReportTable("size_front", *front_figs.front_table(data, knee_tolerance)))
    summary = _summary(data, comparison, figures)
    for line in [*choice_lines(study), *depth_lines(study)]:
        summary += f"\n{line}"
    if study.user_attrs.get(keys.TASK_LINE):
        summary += f"\n- {study.user_attrs[keys.TASK_LINE]}"
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
    return _notable_trials_table(an.compare_best(study, knee_tolerance=knee_tolerance)).frame


def _default_knee_tolerance(study: optuna.Study, data: an.StudyData) -> float:
    return an.default_knee_tolerance(study.user_attrs, data.metric)


def _notable_trials_table(comparison: an.BestComparison | None) -> ReportTable:
    # The rows of the summary's comparison and of the terminal's (archsearch.stats.BestComparison), as a table.
    if comparison is None:
        caption = "No trial finished, so there are no notable trials."
        return ReportTable("notable_trials", "Best trial, knee and linear baseline", caption, pd.DataFrame())
    frame = comparison.frame().replace({"role": {an.ROLE_LINEAR: LINEAR_BASELINE}})
    caption = (
        "The best trial, the knee (smallest within the knee_tolerance of the best; not listed when it is the best "
        "itself) and the linear baseline (0 hidden layers), with validation metric on "
        f"{comparison.val_rows()} and test metric on {comparison.test_rows()}."
    )
    verdict = comparison.verdict()
    return ReportTable(
        "notable_trials",
        "Best trial, knee and linear baseline",
        caption + (f" {verdict}" if verdict else ""),
        frame,
    )


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


def _summary(data: an.StudyData, comparison: an.BestComparison | None, figures: list[ReportFigure]) -> str:
    counts = data.trials["state"].value_counts()
    states = ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) or "none"
    better = "higher" if data.maximize else "lower"
    lines = [
        f"## archsearch report: {data.study_name}",
        "",
        f"- Metric: validation {data.metric}{f' ({data.task})' if data.task else ''}; {better} is better.",
        f"- Trials: {len(data.trials)} ({states}).",
    ]
    if comparison is None:
        reasons = data.trials["fail_reason"].dropna()
        if not reasons.empty:
            lines.append(f"- No trial finished. Most common failure: {reasons.value_counts().index[0]}")
        else:
            lines.append("- No trial finished, so there is nothing to compare yet.")
    else:
        lines += _comparison_lines(data, comparison)
    skipped = [f.title for f in figures if not f.drawable]
    if skipped:
        lines.append(f"- Not drawn for this study (the reason is under each title): {', '.join(skipped)}.")
    return "\n".join(lines)


def _comparison_lines(data: an.StudyData, comparison: an.BestComparison) -> list[str]:
    """The summary's best, knee and linear baseline, each on validation and test with their rows."""
    done = data.complete

    def row(contender: an.Contender) -> pd.Series:
        return done[done["number"] == contender.number].iloc[0]

    best = comparison.best
    lines = [
        f"- Best: {describe(row(best))} with {data.metric} {format_number(best.value)} on validation "
        f"({comparison.val_rows()}) and {format_number(best.test)} on test ({comparison.test_rows()}), the best of "
        f"{an.plural(comparison.n_trials, 'finished trial')}."
    ]
    knee = comparison.get(an.ROLE_KNEE)
    which = "the best trial itself."
    if knee is not None:
        which = f"{describe(row(knee))} with {format_number(knee.value)} (test {format_number(knee.test)})."
    if an.find_knee(data, comparison.knee_tolerance) is not None:
        within = tolerance_words(data.metric, comparison.knee_tolerance)
        lines.append(f"- Knee, the smallest network within {within} of the best: {which}")
    baseline = an.linear_baseline(data)
    if baseline is not None:
        n_linear = int((done["depth"] == 0).sum())
        linear = comparison.get(an.ROLE_LINEAR)
        versus = (
            f"the best network is {comparison.gap_words(linear)}."
            if linear is not None
            else "it is the best trial: depth buys nothing here."
        )
        lines.append(
            f"- {LINEAR_BASELINE.capitalize()}: trial #{int(baseline['number'])} of "
            f"{an.plural(n_linear, '0-layer trial')}, {format_number(baseline['value'])} "
            f"(test {format_number(baseline['test_value'])}); {versus}"
        )
    verdict = comparison.verdict()
    if verdict:
        lines.append(f"- **{verdict}**")
    if done["depth"].nunique() > 1:
        lines.append(f"- Depth: {an.compare_depths(data).sentence()}.")
    return lines
