"""Figures of ``archsearch sensitivity``, drawn from the plain dict of its result (``SensitivityResult.to_dict``).

A forest plot of every neighbour's paired effect per centre, the metric against each layer's width around a
centre, and, with several centres, how the effect of one change varies with the centre's size.
"""

from __future__ import annotations

from collections.abc import Mapping
import statistics
from typing import Any

import pandas as pd

from archsearch.dashboards._base import fmt
from archsearch.dashboards._base import not_drawable
from archsearch.dashboards._base import ReportFigure
from archsearch.dashboards._base import style
from archsearch.dashboards._report import Report
from archsearch.dashboards._report import ReportTable


VERDICT_COLORS = {"worse": "#d62728", "better": "#2ca02c", "within noise": "#7f7f7f"}
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
        f"Mean difference neighbour - centre in validation {result['metric']} over the shared seeds, with its "
        "95% t-interval, the Wilcoxon signed-rank p-value after Holm's correction over the centre's neighbours, "
        "and the verdict.",
        effects_frame(result),
    )
    return Report(result["companion_study"], result["summary"], figures, [table])


def effects_frame(result: Mapping[str, Any]) -> pd.DataFrame:
    """One row per neighbour: centre, change, parameter change, effect, interval, adjusted p-value, verdict."""
    rows = []
    for centre in result["centres"]:
        for n in centre["neighbours"]:
            effect = n["effect"] or {}
            rows.append({
                "centre": centre["trial"], "change": n["change"], "params": n["n_params"],
                "delta params": n["delta_params"], "mean diff": effect.get("mean"), "ci low": effect.get("ci_low"),
                "ci high": effect.get("ci_high"), "p (Holm)": effect.get("p_adjusted"),
                "verdict": effect.get("verdict", "no paired run"), "seeds": effect.get("n", 0),
                "diverged": n["diverged"],
            })  # fmt: skip
    return pd.DataFrame(rows)


def forest_plot(result: Mapping[str, Any], centre: Mapping[str, Any]) -> ReportFigure:
    """Each neighbour's mean paired difference with its 95% interval, ordered by parameter change."""
    import plotly.graph_objects as go

    key, title = f"sensitivity_forest_{centre['trial']}", f"Effect of each change around trial {centre['trial']}"
    compared = [n for n in centre["neighbours"] if n["effect"] is not None]
    if not compared:
        return not_drawable(key, title, "No neighbour finished a run with the same seed as the centre, so nothing is compared.")
    compared.sort(key=lambda n: (n["delta_params"], n["change"]))
    fig = go.Figure()
    floor = centre["noise_floor"]
    if floor is not None:
        fig.add_vrect(x0=-floor, x1=floor, fillcolor="#bbbbbb", opacity=0.25, line_width=0)
    fig.add_vline(x=0, line={"color": "black", "width": 1})
    for verdict, color in VERDICT_COLORS.items():
        group = [n for n in compared if n["effect"]["verdict"] == verdict]
        if not group:
            continue
        means = [n["effect"]["mean"] for n in group]
        fig.add_trace(go.Scatter(
            x=means, y=[n["change"] for n in group], mode="markers", name=verdict,
            marker={"color": color, "size": 10},
            error_x={
                "type": "data", "symmetric": False,
                "array": [_gap(n["effect"]["ci_high"], m) for n, m in zip(group, means)],
                "arrayminus": [_gap(m, n["effect"]["ci_low"]) for n, m in zip(group, means)],
            },
            hovertext=[_hover(n) for n in group], hoverinfo="text",
        ))  # fmt: skip
    order = [n["change"] for n in compared]
    style(
        fig, title, height=160 + 26 * len(order), legend_title="verdict after Holm",
        xaxis_title=f"neighbour - centre, validation {result['metric']} (mean over paired seeds)",
        yaxis={"categoryorder": "array", "categoryarray": order, "autorange": "reversed", "title": None},
    )  # fmt: skip
    worse = [n["change"] for n in compared if n["effect"]["verdict"] == "worse"]
    better = [n["change"] for n in compared if n["effect"]["verdict"] == "better"]
    caption = (
        f"Each row is one change of trial {centre['trial']}'s architecture, from the largest loss of parameters at "
        f"the top to the largest gain; the dot is the mean difference to the centre over {len(result['seeds'])} "
        "paired seeds, the bar its 95% interval, and the grey band ± the centre's seed-to-seed sd "
        f"({fmt(floor)}). {_verdicts_in_words(worse, better, result['direction'])}"
    )
    return ReportFigure(key, title, caption, fig)


def width_curves(result: Mapping[str, Any], centre: Mapping[str, Any]) -> ReportFigure:
    """The metric against each hidden layer's width around the centre, mean and ± one sd over seeds."""
    import plotly.graph_objects as go

    key, title = f"sensitivity_widths_{centre['trial']}", f"Metric vs each layer's width around trial {centre['trial']}"
    if not centre["widths"] or not centre["values"]:
        reason = "The centre has no hidden layer." if not centre["widths"] else "No run of the centre finished."
        return not_drawable(key, title, reason)
    fig = go.Figure()
    for layer, width in enumerate(centre["widths"]):
        points = [(width, list(centre["values"].values()), "centre")]
        points += [
            (n["widths"][layer], list(n["values"].values()), n["change"])
            for n in centre["neighbours"]
            if n["kind"] == "width" and n["layer"] == layer and n["values"]
        ]
        points.sort(key=lambda p: p[0])
        x = [p[0] for p in points]
        means = [statistics.fmean(p[1]) for p in points]
        sds = [statistics.stdev(p[1]) if len(p[1]) > 1 else 0.0 for p in points]
        color = _LAYER_COLORS[layer % len(_LAYER_COLORS)]
        name = f"layer {layer} (centre {width})"
        fig.add_trace(go.Scatter(
            x=x + x[::-1], y=[m + s for m, s in zip(means, sds)] + [m - s for m, s in zip(means, sds)][::-1],
            fill="toself", fillcolor=color, opacity=0.18, line={"width": 0}, hoverinfo="skip", showlegend=False,
            legendgroup=name,
        ))  # fmt: skip
        fig.add_trace(go.Scatter(
            x=x, y=means, mode="lines+markers", name=name, line={"color": color}, legendgroup=name,
            marker={"size": [14 if p[2] == "centre" else 8 for p in points], "color": color},
            hovertext=[f"{p[2]}<br>width {p[0]}<br>mean {fmt(m)} ± {fmt(s)} over {len(p[1])} seeds"
                       for p, m, s in zip(points, means, sds)],  # fmt: skip
            hoverinfo="text",
        ))  # fmt: skip
    style(fig, title, xaxis={"type": "log", "title": "width of the layer (log scale)"},
          yaxis_title=f"validation {result['metric']}", legend_title="resized layer")  # fmt: skip
    caption = (
        f"For each hidden layer of trial {centre['trial']}, the validation {result['metric']} of the centre (large dot) "
        "and of the networks with only that layer resized, mean over seeds with a ± one sd band. A flat curve "
        "near the centre is a plateau: the width there is not critical."
    )
    return ReportFigure(key, title, caption, fig)


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
        fig.add_trace(go.Scatter(
            x=x + x[::-1], y=floors + [-f for f in floors][::-1], fill="toself", fillcolor="#bbbbbb", opacity=0.3,
            line={"width": 0}, name="± noise floor (centre sd)", hoverinfo="skip",
        ))  # fmt: skip
    for index, group in enumerate(groups):
        x, y, texts = [], [], []
        for centre in centres:
            effects = [n for n in centre["neighbours"] if n["group"] == group and n["effect"] is not None]
            if effects:
                # A centre with several layers has one such neighbour per layer; their mean stands for it.
                x.append(centre["n_params"])
                y.append(statistics.fmean(n["effect"]["mean"] for n in effects))
                texts.append(f"trial {centre['trial']} ({centre['n_params']:,} params)<br>"
                             + "<br>".join(f"{n['change']}: {fmt(n['effect']['mean'])} ({n['effect']['verdict']})"
                                           for n in effects))  # fmt: skip
        if x:
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines+markers", name=group, hovertext=texts, hoverinfo="text",
                marker={"size": 9, "color": _LAYER_COLORS[index % len(_LAYER_COLORS)]},
                line={"color": _LAYER_COLORS[index % len(_LAYER_COLORS)]},
            ))  # fmt: skip
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    style(fig, title, xaxis={"type": "log", "title": "trainable parameters of the centre (log scale)"},
          yaxis_title=f"neighbour - centre, validation {result['metric']}", legend_title="change")  # fmt: skip
    caption = (
        f"For each of the {len(centres)} centres (trials {', '.join(str(c['trial']) for c in centres)}), the mean "
        "paired effect of each change, averaged over the centre's layers; the grey band is ± the centre's "
        "seed-to-seed sd. Effects inside the band are smaller than the noise of one run; a change whose "
        "effect shrinks with size marks where the networks reach a plateau."
    )
    return ReportFigure(key, title, caption, fig)


def _gap(high: float | None, low: float | None) -> float:
    """Length of one arm of an error bar; 0 when the interval is undefined (a single seed)."""
    return 0.0 if high is None or low is None else high - low


def _hover(neighbour: Mapping[str, Any]) -> str:
    e = neighbour["effect"]
    return (
        f"{neighbour['change']}<br>widths {neighbour['widths']}; {neighbour['n_params']:,} params "
        f"({neighbour['delta_params']:+,})<br>mean diff {fmt(e['mean'])} [{fmt(e['ci_low'])}, {fmt(e['ci_high'])}]"
        f"<br>p {fmt(e['p_value'])}, Holm {fmt(e['p_adjusted'])}, {e['n']} seeds"
    )


def _verdicts_in_words(worse: list[str], better: list[str], direction: str) -> str:
    if not worse and not better:
        return "No change differs from the centre beyond the noise after Holm's correction: the centre sits on a plateau."
    parts = []
    if worse:
        parts.append(f"worse: {', '.join(worse)}")
    if better:
        parts.append(f"better: {', '.join(better)}")
    return f"After Holm's correction ({'higher' if direction == 'maximize' else 'lower'} is better), " + "; ".join(parts) + "."
