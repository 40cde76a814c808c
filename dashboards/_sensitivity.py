"""Figures of ``archsearch sensitivity``, drawn from the plain dict of its result (``SensitivityResult.to_dict``).

A forest plot of every neighbour's paired effect per centre, the metric against each layer's width around a
centre, and, with several centres, how the effect of one change varies with the centre's size. The verdicts
in words are not derived here: the forest plot's caption repeats each centre's ``findings``, the sentence the
summary also prints, so a caption and the summary cannot disagree.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

import pandas as pd

from archsearch.dashboards._base import ReportFigure, not_drawable, style, symbols, with_far_off
from archsearch.dashboards._report import Report, ReportTable
from archsearch.stats import MetricRange, format_p, metric_range
from archsearch.stats import format_number as fmt_number

VERDICT_COLORS = {"worse": "#d62728", "better": "#2ca02c", "equivalent": "#1f77b4", "inconclusive": "#aaaaaa"}
# The changes compared across centres, in legend order; the width step of the analysis joins them.
_ACROSS_GROUPS = ("-1 neuron", "+1 neuron", "-1 layer", "+1 layer")
_LAYER_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]


def build_sensitivity_report(result: Mapping[str, Any]) -> Report:
    """Build the report of a sensitivity analysis from ``SensitivityResult.to_dict()``.

    Args:
        result: The JSON-able result: ``metric``, ``direction``, ``seeds``, ``centres`` with their
            ``neighbours`` and paired ``effect`` each, ``summary``.

    Returns:
        A report titled after the companion study: per centre a forest plot and width curves, the
        across-sizes figure when there are several centres, and the table of effects.
    """
    figures = []
    for centre in result["centres"]:
        figures += [forest_plot(result, centre), width_curves(result, centre)]
    if len(result["centres"]) > 1:
        figures.append(effects_across_sizes(result))
    table = ReportTable(
        "sensitivity_effects",
        "Paired effects of every neighbour",
        f"Mean difference neighbour - centre in validation {result['metric']} over the shared seeds; the 95% "
        "interval and the p-value of the Wilcoxon signed-rank test of those differences, before Holm's correction "
        "(the interval excludes 0 exactly when p < 0.05, and has no bound with 5 seeds or fewer); that p-value after "
        "Holm's correction over the centre's neighbours; and the verdict: better or worse (Holm-corrected "
        "Wilcoxon), equivalent (Holm-corrected TOST within the margin: the centre's seed-to-seed sd unless one was "
        "given, and never below one validation row) or inconclusive (with on how many seeds the neighbour was "
        "higher or lower). Layers are numbered from the input: layer 1 is next to the input.",
        effects_frame(result),
    )
    return Report(result["companion_study"], result["summary"], figures, [table])


def effects_frame(result: Mapping[str, Any]) -> pd.DataFrame:
    """One row per neighbour: centre, change, parameter change, effect, interval, adjusted p-value, verdict."""
    rows = []
    for centre in result["centres"]:
        for n in centre["neighbours"]:
            effect = n["effect"] or {}
            rows.append(
                {
                    "centre": centre["trial"],
                    "change": n["change"],
                    "params": n["n_params"],
                    "delta params": n["delta_params"],
                    "mean diff": effect.get("mean"),
                    "ci low": effect.get("ci_low"),
                    "ci high": effect.get("ci_high"),
                    "p": effect.get("p_value"),
                    "p (Holm)": effect.get("p_adjusted"),
                    "verdict": effect.get("label", "no paired run"),
                    "seeds": effect.get("n", 0),
                    "diverged": n["diverged"],
                }
            )
    return pd.DataFrame(rows)


def forest_plot(result: Mapping[str, Any], centre: Mapping[str, Any]) -> ReportFigure:
    """Each neighbour's mean paired difference with its 95% interval, ordered by parameter change."""
    import plotly.graph_objects as go

    key, title = f"sensitivity_forest_{centre['trial']}", f"Effect of each change around trial {centre['trial']}"
    compared = [n for n in centre["neighbours"] if n["effect"] is not None]
    if not compared:
        return not_drawable(
            key, title, "No neighbour finished a run with the same seed as the centre, so nothing is compared."
        )
    compared.sort(key=lambda n: (n["delta_params"], n["change"]))
    frange = _forest_range(result, compared, centre["margin"])
    fig = go.Figure()
    margin = centre["margin"]
    if margin is not None:
        fig.add_vrect(x0=-margin, x1=margin, fillcolor="#bbbbbb", opacity=0.25, line_width=0)
    fig.add_vline(x=0, line={"color": "black", "width": 1})
    for verdict, color in VERDICT_COLORS.items():
        group = [n for n in compared if n["effect"]["verdict"] == verdict]
        if not group:
            continue
        means = [n["effect"]["mean"] for n in group]
        # A far-off change sits at the edge without its interval, which would run off the axis.
        near = [not frange.is_far(m) for m in means]
        fig.add_trace(
            go.Scatter(
                x=frange.clip_all(means),
                y=[n["change"] for n in group],
                mode="markers",
                name=verdict,
                marker={"color": color, "size": 10, "symbol": symbols(frange, means, axis="x")},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [_gap(n["effect"]["ci_high"], m) * k for n, m, k in zip(group, means, near)],
                    "arrayminus": [_gap(m, n["effect"]["ci_low"]) * k for n, m, k in zip(group, means, near)],
                },
                hovertext=[_hover(n) for n in group],
                hoverinfo="text",
            )
        )
    order = [n["change"] for n in compared]
    style(
        fig,
        title,
        height=160 + 26 * len(order),
        legend_title="verdict",
        xaxis={
            "title": f"neighbour - centre, validation {result['metric']} (mean over paired seeds)",
            "range": frange.bounds,
        },
        yaxis={"categoryorder": "array", "categoryarray": order, "autorange": "reversed", "title": None},
    )
    band = f"the equivalence margin, {centre['margin_source']}"
    caption = (
        f"Each row is one change of trial {centre['trial']}'s architecture (layer 1 is next to the input), from the "
        "largest loss of parameters at the top to the largest gain; the dot is the mean difference to the centre "
        "over the paired seeds, the bar the 95% interval of the signed-rank test (none where 5 seeds or fewer "
        f"cannot bound it), and the grey band ± {band} ({fmt_number(margin)}). {centre['findings']}"
    )
    how = "at the edge of the axis (open triangles, without their interval)"
    return ReportFigure(key, title, with_far_off(caption, frange, how, noun="change"), fig)


def _forest_range(result: Mapping[str, Any], compared: list, margin: float | None) -> MetricRange:
    """The x range of a forest plot: the bulk of the mean effects, 0, the margin band and the near ones' intervals.

    The fence depends on the means alone, so the second fit fences the same changes as the first.
    """
    maximize = result["direction"] == "maximize"
    means = [n["effect"]["mean"] for n in compared]
    labels = [n["change"] for n in compared]
    first = metric_range(means, labels, maximize=maximize)
    shown = [0.0] + ([-margin, margin] if margin is not None else [])
    for n in compared:
        if not first.is_far(n["effect"]["mean"]):
            shown += [v for v in (n["effect"]["ci_low"], n["effect"]["ci_high"]) if v is not None]
    return metric_range(means, labels, maximize=maximize, include=shown)


def width_curves(result: Mapping[str, Any], centre: Mapping[str, Any]) -> ReportFigure:
    """The metric against each hidden layer's width around the centre, mean and ± one sd over seeds.

    A linear centre has no width to vary: its curve is the one added hidden layer at each width tried,
    with the centre as a dashed line.
    """
    import plotly.graph_objects as go

    key, title = f"sensitivity_widths_{centre['trial']}", f"Metric vs each layer's width around trial {centre['trial']}"
    if not centre["values"]:
        return not_drawable(key, title, "No run of the centre finished.")
    fig = go.Figure()
    curves = _width_curve_points(centre)
    centre_mean = statistics.fmean(centre["values"].values())
    points = [p for _, curve in curves for p in curve]
    frange = metric_range(
        [statistics.fmean(p[1]) for p in points],
        [p[2] for p in points],
        maximize=result["direction"] == "maximize",
        include=[centre_mean],
    )
    if not centre["widths"]:
        fig.add_hline(
            y=centre_mean,
            line={"color": "black", "dash": "dash"},
            annotation_text=f"linear centre, mean of n={len(centre['values'])}",
        )
    for index, (name, points) in enumerate(curves):
        x = [p[0] for p in points]
        means = [statistics.fmean(p[1]) for p in points]
        sds = [statistics.stdev(p[1]) if len(p[1]) > 1 else 0.0 for p in points]
        drawn = frange.clip_all(means)
        # A far-off network sits at the edge with no band: its sd would run off the axis.
        bands = [0.0 if frange.is_far(m) else s for m, s in zip(means, sds)]
        color = _LAYER_COLORS[index % len(_LAYER_COLORS)]
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=[m + s for m, s in zip(drawn, bands)] + [m - s for m, s in zip(drawn, bands)][::-1],
                fill="toself",
                fillcolor=color,
                opacity=0.18,
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=drawn,
                mode="lines+markers",
                name=name,
                line={"color": color},
                legendgroup=name,
                marker={
                    "size": [14 if p[2] == "centre" else 8 for p in points],
                    "color": color,
                    "symbol": symbols(frange, means),
                },
                hovertext=[
                    f"{p[2]}<br>width {p[0]:,}<br>mean {fmt_number(m)} ± {fmt_number(s)} (n={len(p[1])} seeds)"
                    for p, m, s in zip(points, means, sds)
                ],
                hoverinfo="text",
            )
        )
    style(
        fig,
        title,
        xaxis={"type": "log", "title": "width of the layer (log scale)"},
        yaxis={"title": f"validation {result['metric']}", "range": frange.bounds},
        legend_title="resized layer",
    )
    return ReportFigure(key, title, with_far_off(_width_caption(result, centre), frange, noun="network"), fig)


def _width_curve_points(centre: Mapping[str, Any]) -> list[tuple[str, list[tuple[int, list[float], str]]]]:
    """Per curve (a hidden layer, or the one added to a linear centre): its name and ``(width, values, change)``
    points by width, the centre's own among them."""
    curves = [
        (f"layer {layer + 1} (centre {width})", [(width, list(centre["values"].values()), "centre")], layer)
        for layer, width in enumerate(centre["widths"])
    ]
    if not centre["widths"]:
        curves = [("one hidden layer", [], 0)]
    found = []
    for name, points, layer in curves:
        points = points + [
            (n["widths"][layer], list(n["values"].values()), n["change"])
            for n in centre["neighbours"]
            if n["kind"] == ("width" if centre["widths"] else "hidden_layer") and n["layer"] == layer and n["values"]
        ]
        if points:
            found.append((name, sorted(points, key=lambda p: p[0])))
    return found


def _width_caption(result: Mapping[str, Any], centre: Mapping[str, Any]) -> str:
    shown = (
        f"For each hidden layer of trial {centre['trial']}, the validation {result['metric']} of the centre (large dot) "
        "and of the networks with only that layer resized"
        if centre["widths"]
        else f"For the linear trial {centre['trial']}, the validation {result['metric']} of one hidden layer added at "
        "each width, against the centre (dashed line)"
    )
    return (
        f"{shown}: mean over the seeds with a ± one sd band (the hover gives each point's n). The band is seed "
        "noise, not a test; the verdicts are those of the forest plot."
    )


def effects_across_sizes(result: Mapping[str, Any]) -> ReportFigure:
    """The effect of -1/+1 neuron, -1/+1 layer and the width step against the centre's size, with the noise floor."""
    import plotly.graph_objects as go

    key, title = "sensitivity_across_sizes", "Effect of one change vs the size of the centre"
    centres = sorted(result["centres"], key=lambda c: c["n_params"])
    groups = list(_ACROSS_GROUPS)
    for centre in centres:
        groups += [n["group"] for n in centre["neighbours"] if n["group"].endswith("%") and n["group"] not in groups]
    fig = go.Figure()
    sized = [c for c in centres if c["noise_floor"] is not None]
    if sized:
        x = [c["n_params"] for c in sized]
        floors = [c["noise_floor"] for c in sized]
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=floors + [-f for f in floors][::-1],
                fill="toself",
                fillcolor="#bbbbbb",
                opacity=0.3,
                line={"width": 0},
                name="± noise floor (centre sd)",
                hoverinfo="skip",
            )
        )
    for index, group in enumerate(groups):
        x, y, texts = [], [], []
        for centre in centres:
            effects = [n for n in centre["neighbours"] if n["group"] == group and n["effect"] is not None]
            if effects:
                # A centre with several layers has one such neighbour per layer; their mean stands for it.
                x.append(centre["n_params"])
                y.append(statistics.fmean(n["effect"]["mean"] for n in effects))
                texts.append(
                    f"trial {centre['trial']} ({centre['n_params']:,} params)<br>"
                    + "<br>".join(
                        f"{n['change']}: {fmt_number(n['effect']['mean'], signed=True)} ({n['effect']['label']})"
                        for n in effects
                    )
                )
        if x:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines+markers",
                    name=group,
                    hovertext=texts,
                    hoverinfo="text",
                    marker={"size": 9, "color": _LAYER_COLORS[index % len(_LAYER_COLORS)]},
                    line={"color": _LAYER_COLORS[index % len(_LAYER_COLORS)]},
                )
            )
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    style(
        fig,
        title,
        xaxis={"type": "log", "title": "trainable parameters of the centre (log scale)"},
        yaxis_title=f"neighbour - centre, validation {result['metric']}",
        legend_title="change",
    )
    caption = (
        f"For each of the {len(centres)} centres (trials {', '.join(str(c['trial']) for c in centres)}), the mean "
        "paired effect of each change, averaged over the centre's layers; the grey band is ± the centre's "
        "seed-to-seed sd. The hover gives each effect's verdict and n; the verdicts are those of the forest plots."
    )
    return ReportFigure(key, title, caption, fig)


def _gap(high: float | None, low: float | None) -> float:
    """Length of one arm of an error bar; 0 when the interval has no such end (one seed, or unbounded), or
    when the mean lies beyond it (the signed-rank interval is about the median shift, not the mean)."""
    return 0.0 if high is None or low is None else max(0.0, high - low)


def _hover(neighbour: Mapping[str, Any]) -> str:
    e = neighbour["effect"]
    return (
        f"{neighbour['change']}<br>widths {neighbour['widths']}; {neighbour['n_params']:,} params "
        f"({neighbour['delta_params']:+,})<br>mean diff {fmt_number(e['mean'], signed=True)} "
        f"[{fmt_number(e['ci_low'], signed=True)}, {fmt_number(e['ci_high'], signed=True)}]"
        f"<br>p {format_p(e['p_value'])}, Holm {format_p(e['p_adjusted'])}, n={e['n']} seeds<br>{e['label']}"
    )
