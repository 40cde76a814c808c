"""Figures 5-8: dropout, sensitivity, hyperparameter importance, learning curves and pruning."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import optuna

import archsearch.stats as an
from archsearch.dashboards._base import depth_color
from archsearch.dashboards._base import depth_name
from archsearch.dashboards._base import fmt
from archsearch.dashboards._base import hover
from archsearch.dashboards._base import not_drawable
from archsearch.dashboards._base import ReportFigure
from archsearch.dashboards._base import style
from archsearch.dashboards._base import unwrap
from archsearch.dashboards._importance import importance_table
from archsearch.dashboards._size_figures import no_finished_reason


if TYPE_CHECKING:
    import plotly.graph_objects as go


# How many of the best trials get a coloured learning curve; more turns the plot into noise.
N_TOP_CURVES = 5


def dropout_by_size(data: an.StudyData, tolerance: float = 0.005) -> ReportFigure:
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
    shown = set()
    for col, size_bin in enumerate(bins, start=1):
        for depth, group in nets[nets["size_bin"] == size_bin].groupby("depth"):
            fig.add_trace(go.Scatter(
                x=group["mean_dropout"], y=group["value"], mode="markers", name=depth_name(depth),
                legendgroup=str(depth), showlegend=depth not in shown, hovertext=hover(group), hoverinfo="text",
                marker={"color": depth_color(depth), "size": 8, "opacity": 0.8},
            ), row=1, col=col)  # fmt: skip
            shown.add(depth)
    fig.update_xaxes(title_text="mean dropout over layers")
    style(fig, title, yaxis_title=data.metric_label, legend_title="hidden layers", height=400)
    effects = an.dropout_effect(data, tolerance)
    readings = "; ".join(f"{r.size_bin}: {r.verdict} ({_dropout_evidence(r)})" for r in effects.itertuples())
    caption = (
        "Finished networks by their mean dropout rate, one panel per parameter-count bin. Dropout is "
        f"said to help or hurt in a bin when the median {data.metric} of trials with dropout differs "
        f"from those without by more than {tolerance:g}. Reading: {readings}."
    )
    return ReportFigure(key, title, caption, fig)


def spread_vs_size(data: an.StudyData) -> ReportFigure:
    """Figure 6: within each size bin, the spread across trials next to the seed-to-seed spread."""
    import plotly.graph_objects as go

    key, title = "spread_vs_size", "Sensitivity: spread of the metric at each size"
    spread = an.spread_by_size(data)
    spread = spread[spread["n"] >= 2]
    if spread.empty:
        reason = "No size bin holds two finished trials, so there is no spread to measure."
        return not_drawable(key, title, no_finished_reason(data) if data.complete.empty else reason)
    labels = spread["size_bin"].astype(str)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=spread["trial_std"], name="across all trials of the bin", marker_color="#1f77b4",
                         text=[f"{n} trials" for n in spread["n"]], textposition="outside"))  # fmt: skip
    has_repeats = spread["n_groups"].sum() > 0
    if has_repeats:
        fig.add_trace(go.Bar(
            x=labels, y=spread["seed_std"], name="seed to seed (same setting)", marker_color="#ff7f0e",
            text=[f"{n} groups" if n else "" for n in spread["n_groups"]], textposition="outside",
        ))  # fmt: skip
    yaxis_title = f"standard deviation of {data.metric}"
    style(fig, title, barmode="group", xaxis_title="parameter-count bin", yaxis_title=yaxis_title)
    widest = spread.iloc[spread["trial_std"].argmax()]
    caption = (
        f"For each parameter-count bin, the standard deviation of {data.metric} over its finished trials: "
        "how much everything other than size (widths, dropout, learning rate, ...) moves the result. "
        f"The result is most sensitive in the {widest['size_bin']} bin (std {fmt(widest['trial_std'])}). "
    )
    if not has_repeats:
        caption += (
            "No trial repeats a setting with another seed (user attr seed_group), so no repeats exist to "
            "measure the seed-to-seed spread."
        )
        return ReportFigure(key, title, caption, fig)
    seeds = spread.dropna(subset=["seed_std"])
    caption += (
        "Orange bars are the spread between seeds of one setting (pooled over seed_group repeats): "
        + "; ".join(f"{r.size_bin} {fmt(r.seed_std)}" for r in seeds.itertuples())
        + ". Differences between trials smaller than about twice the seed spread are noise."
    )
    return ReportFigure(key, title, caption, fig)


def importance(study: optuna.Study, data: an.StudyData) -> ReportFigure:
    """Figure 7: PED-ANOVA importance of sampled parameters and derived size features."""
    import plotly.graph_objects as go

    key, title = "importance", "Hyperparameter importance (PED-ANOVA)"
    try:
        table = importance_table(study, data)
    except ValueError as e:
        return not_drawable(key, title, str(e))
    shown = table.iloc[::-1]  # plotly draws the first bar at the bottom
    names = [f"{f} (derived)" if d else f for f, d in zip(shown["feature"], shown["derived"])]
    colors = ["#ff7f0e" if d else "#1f77b4" for d in shown["derived"]]
    fig = go.Figure(go.Bar(x=shown["importance"], y=names, orientation="h", marker_color=colors, hoverinfo="x+y"))
    style(fig, title, xaxis_title="importance (sampled parameters sum to 1)", height=max(300, 28 * len(names) + 120))
    top = ", ".join(
        f"{r.feature}{' (derived)' if r.derived else ''} {r.importance:.2f}" for r in table.head(3).itertuples()
    )
    caption = (
        "PED-ANOVA, Optuna's default importance, scores how differently each parameter is distributed "
        f"among the best 10% of trials than among all {len(data.complete)} finished ones; conditional "
        "parameters such as width_2 are scored on the trials that have them. Blue bars are parameters the "
        "search sampled and sum to 1. Orange bars are derived size features (depth, total hidden units, "
        "parameter count) computed from each trial's widths; they restate the sampled parameters, so they "
        f"are shown on the same scale but left out of the sum. Most important: {top}."
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
        fig.add_trace(go.Scatter(
            x=steps, y=values, mode="lines", name="pruned", legendgroup="pruned", showlegend=i == 0,
            line={"color": "#aaaaaa", "width": 1, "dash": "dot"}, hovertext=f"trial #{number} (pruned)",
            hoverinfo="text+y",
        ))  # fmt: skip
    for rank, row in enumerate(top.itertuples(), start=1):
        steps, values = data.curves[row.number]
        color = depth_color(row.depth) if math.isfinite(row.depth) else None
        fig.add_trace(go.Scatter(
            x=steps, y=values, mode="lines", name=f"#{rank}: trial {row.number}", line={"color": color, "width": 2}
        ))
    style(fig, title, xaxis_title="epoch", yaxis_title=data.metric_label)
    caption = (
        f"Validation {data.metric} after every epoch for the {len(top)} best finished trials (coloured by "
        f"depth) and the {len(pruned)} pruned ones (grey, dotted), which stop where the pruner judged them "
        "unpromising. "
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
        return not_drawable(key, title, f"{summary.n_pruned} trials were pruned but none reported an epoch count.")
    fig = go.Figure(go.Bar(x=list(summary.pruned_at), y=list(summary.pruned_at.values()), marker_color="#7f7f7f"))
    style(fig, title, xaxis={"title": "last epoch trained", "dtick": 1}, yaxis_title="pruned trials", height=350)
    most = max(summary.pruned_at, key=summary.pruned_at.get)
    caption = (
        f"{summary.n_pruned} of {len(data.trials)} trials were pruned, most after epoch {most}. Had they run "
        f"the full {summary.full_epochs} epochs, they would have trained about "
        f"{format_seconds(summary.saved_seconds)} longer: that is the time pruning saved (estimated from "
        "each pruned trial's own time per epoch)."
    )
    return ReportFigure(key, title, caption, fig)


def _dropout_evidence(row) -> str:
    if row.verdict == "cannot tell":
        return f"no trials {'without' if row.n_without == 0 else 'with'} dropout"
    return f"median {fmt(row.median_with)} with vs {fmt(row.median_without)} without"


def format_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3.5 min"``, ``"1.2 h"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def plot_dropout_by_size(study: optuna.Study, *, tolerance: float = 0.005) -> go.Figure:
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
