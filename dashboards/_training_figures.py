"""Figures 5-8: dropout, sensitivity, hyperparameter importance, learning curves and pruning."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import optuna

import archsearch.stats as an
from archsearch.dashboards._base import (
    ReportFigure,
    depth_color,
    depth_name,
    fit_metric,
    hover,
    not_drawable,
    style,
    symbols,
    unwrap,
    with_far_off,
)
from archsearch.dashboards._importance import importance_table, top_quantile
from archsearch.dashboards._size_figures import no_finished_reason

if TYPE_CHECKING:
    import plotly.graph_objects as go


# How many of the best trials get a coloured learning curve; more turns the plot into noise.
N_TOP_CURVES = 5
# One distinct colour per top curve (plotly's qualitative "Bold"): depth colours would give them all one.
_CURVE_COLORS = ["#7F3C8D", "#11A579", "#3969AC", "#F2B701", "#E73F74"]


def dropout_by_size(data: an.StudyData, tolerance: float = an.KNEE_TOLERANCE) -> ReportFigure:
    """Figure 5: metric vs mean dropout, one panel per parameter-count bin."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    key, title = "dropout_by_size", "Dropout vs metric, by network size"
    nets = data.sized
    nets = nets[(nets["depth"] >= 1) & nets["mean_dropout"].notna()]
    if nets.empty:
        reason = "No finished trial has a hidden layer, so there is no dropout to compare."
        return not_drawable(key, title, no_finished_reason(data) if data.complete.empty else reason)
    if nets["mean_dropout"].nunique() < 2:
        only = nets["mean_dropout"].iloc[0]
        reason = f"Every network trained with dropout {only:g}, so there is no dropout effect to see."
        return not_drawable(key, title, reason)
    bins = [b for b in nets["size_bin"].cat.categories if b in set(nets["size_bin"])]
    fig = make_subplots(
        rows=1, cols=len(bins), shared_yaxes=True, subplot_titles=[str(b) for b in bins], horizontal_spacing=0.04
    )
    frange = fit_metric(nets, data.maximize)
    shown = set()
    for col, size_bin in enumerate(bins, start=1):
        for depth, group in nets[nets["size_bin"] == size_bin].groupby("depth"):
            fig.add_trace(
                go.Scatter(
                    x=group["mean_dropout"],
                    y=frange.clip_all(group["value"]),
                    mode="markers",
                    name=depth_name(depth),
                    legendgroup=str(depth),
                    showlegend=depth not in shown,
                    hovertext=hover(group),
                    hoverinfo="text",
                    marker={
                        "color": depth_color(depth),
                        "size": 8,
                        "opacity": 0.8,
                        "symbol": symbols(frange, group["value"]),
                    },
                ),
                row=1,
                col=col,
            )
            shown.add(depth)
    fig.update_xaxes(title_text="mean dropout over layers")
    fig.update_yaxes(range=frange.bounds)
    style(fig, title, yaxis_title=data.metric_label, legend_title="hidden layers", height=400)
    effects = an.dropout_effect(data, tolerance)
    readings = "; ".join(f"{r.size_bin}: {r.verdict} ({_dropout_evidence(r)})" for r in effects.itertuples())
    caption = (
        "Finished networks by their mean dropout rate, one panel per parameter-count bin. Dropout is "
        f"said to help or hurt in a bin when the median {data.metric} of trials with dropout differs "
        f"from those without by more than {tolerance:g} (in a bin with no dropout-0 trial: those above the "
        f"bin's median dropout against those at or below it), and each side holds {an.MIN_GROUP_TRIALS} trials or "
        f"more. Reading: {readings}."
    )
    return ReportFigure(key, title, with_far_off(caption, frange), fig)


def spread_title(reading: an.SpreadReading) -> str:
    """Figure 6's title: it names the seed-to-seed spread only when the study measures it."""
    return (
        "Seed-to-seed and trial-to-trial spread by size" if reading.measures_seeds else "Trial-to-trial spread by size"
    )


def spread_vs_size(data: an.StudyData) -> ReportFigure:
    """Figure 6: within each size bin, the spread across trials next to the seed-to-seed spread.

    Title and caption both read one `archsearch.stats.SpreadReading`, so the title never promises a spread
    the caption says this study cannot measure, and a bin is only measured from enough trials (`may_compare`).
    """
    import plotly.graph_objects as go

    reading = an.read_spread(data)
    key, title, spread = "spread_vs_size", spread_title(reading), reading.table
    if spread.empty:
        reason = "No size bin holds two finished trials, so there is no spread to measure."
        if reading.too_few:
            reason = f"No size bin's spread is measured: {an.too_few(reading.too_few, 'measure a spread')}."
        return not_drawable(key, title, no_finished_reason(data) if data.complete.empty else reason)
    labels = spread["size_bin"].astype(str)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=labels,
            y=spread["trial_iqr"],
            name="trial to trial (IQR)",
            marker_color="#1f77b4",
            text=[f"n={n:,}" for n in spread["n"]],
            textposition="outside",
        )
    )
    if reading.measures_seeds:
        fig.add_trace(
            go.Bar(
                x=labels,
                y=spread["seed_std"],
                name="seed to seed (pooled sd)",
                marker_color="#ff7f0e",
                text=[an.plural(n, "setting") if n else "" for n in spread["n_groups"]],
                textposition="outside",
            )
        )
    style(fig, title, barmode="group", xaxis_title="parameter-count bin", yaxis_title=f"spread of {data.metric}")
    return ReportFigure(key, title, _spread_caption(data, reading), fig)


def _spread_caption(data: an.StudyData, reading: an.SpreadReading) -> str:
    value, spread = an.format_number, reading.table
    bins = "; ".join(f"{r.size_bin}: IQR {value(r.trial_iqr)} ({an.plural(r.n, 'trial')})" for r in spread.itertuples())
    caption = (
        f"For each parameter-count bin, the interquartile range of {data.metric} over its finished trials (the "
        "middle half of them; one outlier does not move it): how much everything other than size (widths, "
        f"dropout, learning rate, ...) moves the result. {bins}. "
    )
    if reading.too_few:
        small = "; ".join(f"{label}, {an.plural(n, 'trial')}" for label, n in reading.too_few.items())
        caption += f"Not measured, with fewer than {an.MIN_GROUP_TRIALS} trials: {small}. "
    if reading.widest is not None:
        caption += f"The widest is the {reading.widest} bin. "
    if not reading.measures_seeds:
        return caption + (
            "The search trains each setting once, so this study cannot measure the seed-to-seed spread; "
            "`archsearch sensitivity --repeats R` retrains the best trial with R seeds and measures it."
        )
    seeds = spread.dropna(subset=["seed_std"])
    return caption + (
        "Orange bars are the standard deviation between seeds of one setting, pooled over settings trained "
        "more than once: "
        + "; ".join(f"{r.size_bin} {value(r.seed_std)}" for r in seeds.itertuples())
        + ". Differences between trials smaller than about twice the seed spread are noise."
    )


def importance(study: optuna.Study, data: an.StudyData) -> ReportFigure:
    """Figure 7: PED-ANOVA importance of sampled parameters and derived size features."""
    import plotly.graph_objects as go

    key, title = "importance", "Hyperparameter importance (PED-ANOVA)"
    try:
        table = importance_table(study, data)
    except ValueError as e:
        return not_drawable(key, title, str(e))
    from plotly.subplots import make_subplots

    sampled, derived = table[~table["derived"]], table[table["derived"]]
    # Derived features restate the sampled ones, so they get their own panel and their own sum of 1:
    # on the sampled axis they would reach past 1 and read as "more than everything".
    derived_scale = derived["importance"].sum()
    if derived_scale > 0:
        derived = derived.assign(importance=derived["importance"] / derived_scale)
    panels = [
        ("sampled parameters (sum to 1)", sampled, "#1f77b4"),
        ("derived size features (sum to 1)", derived, "#ff7f0e"),
    ]
    panels = [p for p in panels if not p[1].empty]
    rows = [len(p[1]) for p in panels]
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        subplot_titles=[p[0] for p in panels],
        row_heights=rows,
        shared_xaxes=True,
        vertical_spacing=0.12,
    )
    for row, (_, part, color) in enumerate(panels, start=1):
        shown = part.iloc[::-1]  # plotly draws the first bar at the bottom
        fig.add_trace(
            go.Bar(
                x=shown["importance"],
                y=shown["feature"],
                orientation="h",
                marker_color=color,
                hoverinfo="x+y",
                showlegend=False,
            ),
            row=row,
            col=1,
        )
    fig.update_xaxes(range=[0, 1])
    style(fig, title, height=max(300, 28 * sum(rows) + 80 * len(panels) + 80))
    fig.update_xaxes(title_text="importance", row=len(panels), col=1)
    top = ", ".join(f"{r.feature} {an.format_number(r.importance, 2)}" for r in sampled.head(3).itertuples())
    quantile = top_quantile(len(data.complete))
    best_share, best_count = f"{quantile:.0%}", math.ceil(quantile * len(data.complete))
    caption = (
        "PED-ANOVA, Optuna's default importance, scores how differently each parameter is distributed "
        f"among the best {best_share} of trials ({an.plural(best_count, 'trial')}) than among all "
        f"{len(data.complete)} finished ones; conditional "
        "parameters such as width_2 are scored on the trials that have them. Blue bars (top) are parameters "
        "the search sampled and sum to 1. Orange bars (below) are derived size features (depth, total hidden "
        "units, parameter count) computed from each trial's widths; they restate the sampled parameters, so "
        f"they are scored among themselves and sum to 1 on their own. Most important sampled: {top}."
    )
    return ReportFigure(key, title, caption, fig)


def learning_curves(data: an.StudyData) -> ReportFigure:
    """Figure 8a: validation metric per epoch for the best trials and for the pruned ones."""
    import plotly.graph_objects as go

    key, title = "learning_curves", "Learning curves of the best and the pruned trials"
    top = data.complete.sort_values(["score", "number"], ascending=[False, True]).head(N_TOP_CURVES)
    top = top[top["number"].isin(data.curves.keys())]
    pruned = data.trials[(data.trials["state"] == "PRUNED") & data.trials["number"].isin(data.curves.keys())]
    if top.empty and pruned.empty:
        reason = "No finished or pruned trial reported a validation metric per epoch (intermediate values)."
        return not_drawable(key, title, reason)
    fig = go.Figure()
    for i, number in enumerate(pruned["number"]):
        steps, values = data.curves[number]
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                mode="lines",
                name="pruned",
                legendgroup="pruned",
                showlegend=i == 0,
                line={"color": "#aaaaaa", "width": 1, "dash": "dot"},
                hovertext=f"trial #{number} (pruned)",
                hoverinfo="text+y",
            )
        )
    shown_values = []
    for rank, row in enumerate(top.itertuples(), start=1):
        steps, values = data.curves[row.number]
        shown_values += values[1:] or values  # the first epoch sits far below and would flatten the rest
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                mode="lines",
                name=f"#{rank}: trial {row.number}"
                + (f" ({depth_name(row.depth)})" if math.isfinite(row.depth) else ""),
                line={"color": _CURVE_COLORS[(rank - 1) % len(_CURVE_COLORS)], "width": 2},
            )
        )
    yaxis = {"title": data.metric_label}
    if shown_values:
        low, high = min(shown_values), max(shown_values)
        pad = (high - low) * 0.1 or abs(high) * 0.01 or 0.01
        yaxis["range"] = [low - pad, high + pad]
    style(fig, title, xaxis_title="epoch", yaxis=yaxis)
    caption = (
        f"Validation {data.metric} after every epoch for the {an.plural(len(top), 'best finished trial')} (one "
        f"colour each) and the {an.plural(len(pruned), 'pruned one')} (grey, dotted), which stop where the pruner "
        "judged them unpromising. The vertical axis spans the best curves after their first epoch, so their "
        "differences show; earlier and pruned values may run off it. "
    )
    if not top.empty:
        best = top.iloc[0]
        steps, values = data.curves[int(best["number"])]
        peak = steps[max(range(len(values)), key=lambda i: values[i] if data.maximize else -values[i])]
        caption += f"The best trial, #{int(best['number'])}, peaked at epoch {peak} of {steps[-1]}."
    return ReportFigure(key, title, caption, fig)


def pruning(data: an.StudyData) -> ReportFigure:
    """Figure 8b: how many trials were pruned at each epoch, and the training time saved."""
    import plotly.graph_objects as go

    key, title = "pruning", "Pruning: trials stopped at each epoch"
    summary = an.pruning_summary(data)
    if summary.n_pruned == 0:
        return not_drawable(key, title, "No trial was pruned, so there is no pruning to summarize.")
    if not summary.pruned_at:
        reason = f"{an.plural(summary.n_pruned, 'trial')} pruned but none reported an epoch count."
        return not_drawable(key, title, reason)
    fig = go.Figure(go.Bar(x=list(summary.pruned_at), y=list(summary.pruned_at.values()), marker_color="#7f7f7f"))
    style(fig, title, xaxis={"title": "last epoch trained", "dtick": 1}, yaxis_title="pruned trials", height=350)
    most = max(summary.pruned_at, key=summary.pruned_at.get)
    caption = (
        f"{summary.n_pruned:,} of {an.plural(len(data.trials), 'trial')} were pruned, most after epoch {most}. Had they run "
        f"the full {summary.full_epochs} epochs, they would have trained about "
        f"{format_seconds(summary.saved_seconds)} longer: that is the time pruning saved (estimated from "
        "each pruned trial's own time per epoch)."
    )
    return ReportFigure(key, title, caption, fig)


def _dropout_evidence(row) -> str:
    value = an.format_number
    if row.split is not None and not math.isnan(row.split):
        if row.verdict == "cannot tell":
            counts = {f"above {value(row.split, 2)}": row.n_with, "at or below": row.n_without}
            return f"no trial without dropout, and {an.too_few(counts, 'compare around the median dropout')}"
        return (
            f"no trial without dropout; median {value(row.median_with)} of {an.plural(row.n_with, 'trial')} with "
            f"dropout above {value(row.split, 2)} vs {value(row.median_without)} of {row.n_without:,} at or below it"
        )
    if row.verdict == "cannot tell":
        return an.too_few({"with dropout": row.n_with, "without": row.n_without}, "compare")
    return (
        f"median {value(row.median_with)} of {an.plural(row.n_with, 'trial')} with vs "
        f"{value(row.median_without)} of {row.n_without:,} without"
    )


def format_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3.5 min"``, ``"1.2 h"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def plot_dropout_by_size(study: optuna.Study, *, tolerance: float = an.KNEE_TOLERANCE) -> go.Figure:
    """Plot the metric against mean dropout, one panel per parameter-count bin (figure 5).

    Raises:
        ValueError: With the reason, when the study cannot support the figure.
    """
    return unwrap(dropout_by_size(an.load_study_data(study), tolerance))


def plot_spread_vs_size(study: optuna.Study) -> go.Figure:
    """Plot the metric's spread per size bin next to the seed-to-seed spread (figure 6).

    Raises:
        ValueError: With the reason, when the study cannot support the figure.
    """
    return unwrap(spread_vs_size(an.load_study_data(study)))


def plot_importance(study: optuna.Study) -> go.Figure:
    """Plot PED-ANOVA importance of sampled parameters and derived size features (figure 7).

    Raises:
        ValueError: With the reason, e.g. fewer than ten finished trials.
    """
    return unwrap(importance(study, an.load_study_data(study)))


def plot_learning_curves(study: optuna.Study) -> go.Figure:
    """Plot the learning curves of the best and the pruned trials (figure 8).

    Raises:
        ValueError: With the reason, when no trial reported intermediate values.
    """
    return unwrap(learning_curves(an.load_study_data(study)))


def plot_pruning(study: optuna.Study) -> go.Figure:
    """Plot how many trials were pruned at each epoch (figure 8, right).

    Raises:
        ValueError: With the reason, when no trial was pruned.
    """
    return unwrap(pruning(an.load_study_data(study)))
