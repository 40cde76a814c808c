"""Figures 1-4: how the metric varies with depth, parameter count, layer widths and layer shape."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import optuna

import archsearch.stats as an
from archsearch.dashboards._base import (
    SHAPE_COLORS,
    ReportFigure,
    depth_color,
    depth_name,
    describe,
    far_off_trace,
    fit_metric,
    hover,
    log_axis,
    not_drawable,
    style,
    symbols,
    unwrap,
    with_far_off,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go


def no_finished_reason(data: an.StudyData) -> str:
    """The sentence for a figure that needs finished trials when there are none."""
    counts = data.trials["state"].value_counts()
    if counts.empty:
        return "The study has no trials yet."
    parts = ", ".join(f"{n} {state.lower()}" for state, n in counts.items())
    return f"No trial finished with a metric ({parts}), so there is nothing to plot."


def metric_vs_depth(data: an.StudyData) -> ReportFigure:
    """Figure 1: every finished trial by number of hidden layers, a box per depth."""
    import plotly.graph_objects as go

    key, title = "metric_vs_depth", "Metric vs number of hidden layers"
    done = data.complete[data.complete["depth"].notna()]
    if done.empty:
        return not_drawable(key, title, no_finished_reason(data))
    summary = an.depth_summary(data)
    if len(summary) < 2:
        reason = f"Every finished trial has {depth_name(summary['depth'][0])}, so there is no depth to compare."
        return not_drawable(key, title, reason)
    frange = fit_metric(done, data.maximize)
    fig = go.Figure()
    for depth, group in done.groupby("depth"):
        fig.add_trace(
            go.Box(
                y=frange.clip_all(group["value"]),
                name=depth_name(depth),
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": depth_color(depth), "size": 7},
                line={"width": 3 if depth == 0 else 1.5},
                hovertext=hover(group),
                hoverinfo="text",
                showlegend=False,
            )
        )
    edge = far_off_trace(frange, [depth_name(d) for d in done["depth"]], done)
    if edge is not None:
        fig.add_trace(edge)
    baseline = an.linear_baseline(data)
    if baseline is not None:
        fig.add_trace(
            go.Scatter(
                x=[depth_name(0)],
                y=[frange.clip(baseline["value"])],
                mode="markers",
                name="linear baseline",
                marker={"symbol": "star", "size": 16, "color": depth_color(0), "line": {"color": "black", "width": 1}},
            )
        )
    yaxis = {"title": data.metric_label, "range": frange.bounds}
    style(fig, title, xaxis_title="hidden layers", yaxis=yaxis)
    return ReportFigure(key, title, with_far_off(_depth_caption(data, summary, baseline), frange), fig)


def _depth_caption(data: an.StudyData, summary, baseline) -> str:
    sign = 1 if data.maximize else -1
    bests = "; ".join(
        f"{depth_name(r.depth)}: {an.format_number(r.best)} (median {an.format_number(r.median)}, "
        f"{an.plural(r.n, 'trial')})"
        for r in summary.itertuples()
    )
    text = (
        "Each dot is a finished trial, each box the spread at that depth; red is the 0-layer linear "
        f"model. Best {data.metric} per depth: {bests}. Depths compared: {an.compare_depths(data).sentence()}. "
    )
    if baseline is None:
        return text + "There is no finished 0-layer trial, so no tuned linear baseline to compare with."
    best = data.complete.sort_values(["score", "number"], ascending=[False, True]).iloc[0]
    gain = sign * (best["value"] - baseline["value"])
    return text + (
        f"The best trial is {an.format_number(gain)} better than the tuned linear baseline (best 0-layer trial, "
        f"{an.format_number(baseline['value'])})."
        if best["depth"] != 0
        else "No network beats the tuned linear baseline (best 0-layer trial): depth buys nothing on this data."
    )


def _params_caption(knee: an.Knee, best: Any, knee_row: Any, metric: str, knee_tolerance: float) -> str:
    """Figure 2's caption: how to read it, then the knee against the best trial."""
    caption = (
        "Each dot is a finished trial at its parameter count (log scale), coloured by depth. The black "
        "step line is the Pareto front: no trial does better with fewer parameters. The star is the "
        f"knee, the smallest network within {knee_tolerance:g} {metric} of the best. "
    )
    value = an.format_number
    if knee.knee == knee.best:
        caption += (
            f"Here the best trial, {describe(best)} at {value(best['value'])}, is also the knee: nothing "
            f"smaller comes within {knee_tolerance:g}."
        )
    else:
        ratio = best["n_params"] / knee_row["n_params"]
        # A gap that rounds away is a tie, and "only 0 short" would read as a typo.
        gap = value(knee.gap)
        short = "ties the best" if float(gap) == 0 else f"only {gap} short of the best"
        caption += (
            f"The knee is {describe(knee_row)} at {value(knee_row['value'])}, {short}, "
            f"{describe(best)} at {value(best['value'])}, with {ratio:,.1f}× fewer parameters."
        )
    return caption


def metric_vs_params(data: an.StudyData, knee_tolerance: float = an.KNEE_TOLERANCE) -> ReportFigure:
    """Figure 2: metric vs parameter count (log axis) by depth, with the Pareto front and the knee."""
    import plotly.graph_objects as go

    key, title = "metric_vs_params", "Metric vs parameter count"
    sized = data.sized
    if len(sized) < 2:
        reason = (
            no_finished_reason(data)
            if data.complete.empty
            else (
                "Fewer than two finished trials record a parameter count (user attr n_params), so there is no size trend."
            )
        )
        return not_drawable(key, title, reason)
    knee = an.find_knee(data, knee_tolerance)
    best, knee_row = (sized[sized["number"] == n].iloc[0] for n in (knee.best, knee.knee))
    limit = best["value"] - knee_tolerance if data.maximize else best["value"] + knee_tolerance
    frange = fit_metric(sized, data.maximize, include=[limit])
    fig = go.Figure()
    for depth, group in sized.groupby("depth"):
        fig.add_trace(
            go.Scatter(
                x=group["n_params"],
                y=frange.clip_all(group["value"]),
                mode="markers",
                name=depth_name(depth),
                marker={
                    "color": depth_color(depth),
                    "size": 8,
                    "opacity": 0.8,
                    "symbol": symbols(frange, group["value"]),
                },
                hovertext=hover(group),
                hoverinfo="text",
            )
        )
    front = an.pareto_front(data)
    fig.add_trace(
        go.Scatter(
            x=front["n_params"],
            y=frange.clip_all(front["value"]),
            mode="lines",
            line={"color": "black", "shape": "hv", "width": 1.5},
            name="Pareto front",
            hoverinfo="skip",
        )
    )
    band = f"best {'-' if data.maximize else '+'} {knee_tolerance:g}"
    fig.add_hline(y=limit, line={"dash": "dot", "color": "grey"}, annotation_text=band)
    fig.add_trace(
        go.Scatter(
            x=[knee_row["n_params"]],
            y=[knee_row["value"]],
            mode="markers",
            name=f"knee (trial #{knee.knee})",
            marker={"symbol": "star", "size": 18, "color": "gold", "line": {"color": "black", "width": 1}},
        )
    )
    xaxis = log_axis(sized["n_params"], "trainable parameters (log scale)")
    yaxis = {"title": data.metric_label, "range": frange.bounds}
    style(fig, title, xaxis=xaxis, yaxis=yaxis, legend_title="hidden layers")
    caption = _params_caption(knee, best, knee_row, data.metric, knee_tolerance)
    return ReportFigure(key, title, with_far_off(caption, frange), fig)


def metric_vs_widths(data: an.StudyData) -> ReportFigure:
    """Figure 3: metric vs the width of each hidden layer (a panel per layer) and vs total units."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    key, title = "metric_vs_widths", "Metric vs width of each hidden layer"
    nets = data.complete[(data.complete["depth"] >= 1) & data.complete["widths"].notna()]
    if nets.empty:
        reason = "No finished trial has a hidden layer, so there are no widths to plot."
        return not_drawable(key, title, no_finished_reason(data) if data.complete.empty else reason)
    max_depth = int(nets["depth"].max())
    # Short panel titles: at the dashboard's half-width card, long ones run together.
    names = [f"layer {i + 1}" for i in range(max_depth)] + ["all layers"]
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, subplot_titles=names, horizontal_spacing=0.03)
    frange = fit_metric(nets, data.maximize)
    for depth, group in nets.groupby("depth"):
        for col in range(1, len(names) + 1):
            if col == len(names):
                x = group["total_units"]
            else:
                x = [w[col - 1] if len(w) >= col else None for w in group["widths"]]
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=frange.clip_all(group["value"]),
                    mode="markers",
                    name=depth_name(depth),
                    legendgroup=str(depth),
                    showlegend=col == 1,
                    marker={
                        "color": depth_color(depth),
                        "size": 7,
                        "opacity": 0.8,
                        "symbol": symbols(frange, group["value"]),
                    },
                    hovertext=hover(group),
                    hoverinfo="text",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(**log_axis(list(nets["total_units"]) + [w for ws in nets["widths"] for w in ws]))
    fig.update_yaxes(range=frange.bounds)
    style(fig, title, yaxis_title=data.metric_label, legend_title="hidden layers", height=400)
    rhos = an.width_correlations(data)
    reading = ", ".join(f"{k} {an.format_number(v, 2, signed=True)}" for k, v in rhos.items() if math.isfinite(v))
    caption = (
        "Each panel puts the finished trials at the width of one hidden layer (log scale; layer 1 is "
        "next to the input), the last panel ('all layers') at the total of all hidden units. Colours are depths. "
    )
    caption += (
        "Rank correlation between width and how good the result is (+1: wider is always better, 0: "
        f"width does not matter, -1: narrower is always better): {reading}."
        if reading
        else "Too few trials with varied widths to measure a trend."
    )
    return ReportFigure(key, title, with_far_off(caption, frange), fig)


def layer_shapes(data: an.StudyData) -> ReportFigure:
    """Figure 4: layer shapes compared within matched parameter-count bins."""
    import plotly.graph_objects as go

    key, title = "layer_shapes", "Layer shape at matched size"
    if data.complete.empty:
        return not_drawable(key, title, no_finished_reason(data))
    table = an.shape_by_size(data)
    if table.empty:
        reason = "Layer shape needs finished trials with 2 or more hidden layers; this study has none."
        return not_drawable(key, title, reason)
    per_bin = table.groupby("size_bin", observed=True)["layer_shape"].nunique()
    if (per_bin < 2).all():
        reason = "No size bin holds two different layer shapes, so shapes cannot be compared at matched size."
        return not_drawable(key, title, reason)
    deep = data.sized
    deep = deep[(deep["depth"] >= 2) & deep["layer_shape"].notna()]
    frange = fit_metric(deep, data.maximize)
    fig = go.Figure()
    for shape, group in deep.groupby("layer_shape"):
        fig.add_trace(
            go.Box(
                x=group["size_bin"].astype(str),
                y=frange.clip_all(group["value"]),
                name=shape,
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                marker={"color": SHAPE_COLORS.get(shape, "#333333")},
                hovertext=hover(group),
                hoverinfo="text",
            )
        )
    edge = far_off_trace(frange, deep["size_bin"].astype(str).tolist(), deep)
    if edge is not None:
        fig.add_trace(edge)
    order = [str(c) for c in deep["size_bin"].cat.categories if c in set(deep["size_bin"])]
    xaxis = {"title": "parameter-count bin", "categoryorder": "array", "categoryarray": order}
    yaxis = {"title": data.metric_label, "range": frange.bounds}
    style(fig, title, boxmode="group", xaxis=xaxis, yaxis=yaxis, legend_title="layer shape")
    readings = [f"in the {size_bin} bin, {found.sentence()}" for size_bin, found in an.compare_shapes(data).items()]
    caption = (
        "Trials with 2+ hidden layers, grouped by parameter count so each shape is compared with "
        "networks of similar size: uniform = all layers equal, funnel = shrinking towards the output, "
        "expanding = growing, diamond = grows then shrinks, irregular = anything else. Reading: "
        + "; ".join(readings)
        + ". Bins with a single shape give no comparison."
    )
    return ReportFigure(key, title, with_far_off(caption, frange), fig)


def plot_metric_vs_depth(study: optuna.Study) -> go.Figure:
    """Plot the metric of every finished trial against its number of hidden layers (figure 1).

    Example:
        >>> from archsearch.dashboards import plot_metric_vs_depth
        >>> plot_metric_vs_depth(study).show()  # doctest: +SKIP

    Raises:
        ValueError: With the reason, when the study cannot support the figure (e.g. one depth).
    """
    return unwrap(metric_vs_depth(an.load_study_data(study)))


def plot_metric_vs_params(study: optuna.Study, *, knee_tolerance: float = an.KNEE_TOLERANCE) -> go.Figure:
    """Plot the metric against parameter count with the Pareto front and the knee (figure 2).

    Raises:
        ValueError: With the reason, when the study cannot support the figure.
    """
    return unwrap(metric_vs_params(an.load_study_data(study), knee_tolerance))


def plot_metric_vs_widths(study: optuna.Study) -> go.Figure:
    """Plot the metric against each hidden layer's width and the total hidden units (figure 3).

    Raises:
        ValueError: With the reason, when the study cannot support the figure.
    """
    return unwrap(metric_vs_widths(an.load_study_data(study)))


def plot_layer_shapes(study: optuna.Study) -> go.Figure:
    """Plot the metric by layer shape within parameter-count bins (figure 4).

    Raises:
        ValueError: With the reason, when the study cannot support the figure.
    """
    return unwrap(layer_shapes(an.load_study_data(study)))
