"""The views every study has: best-so-far history, parallel coordinates and the table of all trials."""

from __future__ import annotations

import math
import re

import optuna
import pandas as pd

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
    with_far_off,
)
from archsearch.dashboards._size_figures import no_finished_reason

# The architecture's params are drawn from the trials' widths and dropouts, layer by layer.
_ARCHITECTURE_PARAM = re.compile(r"^(n_layers|width_\d+|dropout_\d+)$")


def best_so_far(data: an.StudyData) -> ReportFigure:
    """Figure 10: every finished trial by trial number, with the best value found up to each one."""
    import plotly.graph_objects as go

    key, title = "best_so_far", "Best value so far, trial by trial"
    done = data.complete.sort_values("number")
    if done.empty:
        return not_drawable(key, title, no_finished_reason(data))
    frange = fit_metric(done, data.maximize)
    fig = go.Figure()
    for depth, group in done.groupby("depth"):
        fig.add_trace(
            go.Scatter(
                x=group["number"],
                y=frange.clip_all(group["value"]),
                mode="markers",
                name=depth_name(depth),
                marker={
                    "color": depth_color(depth),
                    "size": 7,
                    "opacity": 0.7,
                    "symbol": symbols(frange, group["value"]),
                },
                hovertext=hover(group),
                hoverinfo="text",
            )
        )
    running = done["value"].cummax() if data.maximize else done["value"].cummin()
    fig.add_trace(
        go.Scatter(
            x=done["number"],
            y=frange.clip_all(running),
            mode="lines",
            line={"color": "black", "shape": "hv", "width": 2},
            name="best so far",
            hoverinfo="x+y",
        )
    )
    yaxis = {"title": data.metric_label, "range": frange.bounds}
    style(fig, title, xaxis_title="trial number", yaxis=yaxis, legend_title="hidden layers")
    last_gain = done[running.diff().fillna(1.0) != 0]["number"].iloc[-1]
    caption = (
        f"Each dot is a finished trial in the order it was started, coloured by depth; the black step line is "
        f"the best {data.metric} found up to that trial ({an.plural(len(done), 'finished trial')} of "
        f"{an.plural(len(data.trials), 'trial')}). The best so far last improved at trial #{int(last_gain)}, "
        f"{an.plural(int(done['number'].max() - last_gain), 'trial')} before the last finished one: a long flat "
        "end says more trials of this search are unlikely to help."
    )
    return ReportFigure(key, title, with_far_off(caption, frange), fig)


def parallel_coordinates(study: optuna.Study, data: an.StudyData) -> ReportFigure:
    """Figure 11: parallel coordinates over depth, widths, dropouts, parameter count and training params."""
    import plotly.graph_objects as go

    key, title = "parallel_coordinates", "Parallel coordinates: architecture and training"
    done = data.sized
    if len(done) < 2:
        reason = no_finished_reason(data) if data.complete.empty else "Fewer than two finished trials to compare."
        return not_drawable(key, title, reason)
    max_depth = int(done["depth"].max())
    # Layers a trial does not have sit at 0 on the width and dropout axes, said so in the axis label.
    dimensions = [{"label": "hidden layers", "values": done["depth"], "tickvals": sorted(done["depth"].unique())}]
    for i in range(max_depth):
        dimensions.append(
            {
                "label": f"width {i + 1} (0: none)",
                "values": [w[i] if w is not None and len(w) > i else 0 for w in done["widths"]],
            }
        )
    for i in range(max_depth):
        dimensions.append(
            {
                "label": f"dropout {i + 1}",
                "values": [d[i] if d is not None and len(d) > i else 0.0 for d in done["dropouts"]],
            }
        )
    dimensions.append({"label": "log10 params", "values": [math.log10(n) for n in done["n_params"]]})
    dimensions += _training_dimensions(study, list(done["number"]))
    # The metric axis and the colour scale fit the bulk of the trials; far-off ones sit at the axis's end
    # in the scale's worst colour, so the others' colours spread over the whole scale.
    frange = fit_metric(done, data.maximize)
    clipped = frange.clip_all(done["value"])
    dimensions.append({"label": data.metric, "values": clipped, "range": frange.bounds})
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": clipped,
                "cmin": frange.low,
                "cmax": frange.high,
                "colorscale": "Viridis",
                "showscale": True,
                "reversescale": not data.maximize,
            },
            dimensions=dimensions,
            labelangle=-20,
            labelfont={"size": 11},
        )
    )
    style(fig, title, height=470)
    fig.update_layout(margin={"l": 60, "r": 40, "t": 110, "b": 40})  # room for the slanted axis labels
    caption = (
        f"One line per finished trial ({an.plural(len(done), 'trial')}), coloured by {data.metric} "
        f"({'yellow' if data.maximize else 'purple'} is better): its depth, the width and dropout of each hidden "
        "layer (0 where the trial has no such layer), its parameter count (log10) and the training "
        "hyperparameters the search sampled (categorical ones as their choices). Drag along an axis to keep "
        "only the trials in a range."
    )
    how = "at the end of the metric axis in the colour scale's worst colour"
    return ReportFigure(key, title, with_far_off(caption, frange, how), fig)


def _training_dimensions(study: optuna.Study, numbers: list[int]) -> list[dict]:
    """An axis per sampled training parameter: log10 for log-scaled ones, choices for categorical ones."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    trials = [by_number[n] for n in numbers]
    names = sorted({p for t in trials for p in t.params if not _ARCHITECTURE_PARAM.match(p)})
    dimensions = []
    for name in names:
        distribution = next(t.distributions[name] for t in trials if name in t.distributions)
        values = [t.params.get(name) for t in trials]
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            choices = [str(c) for c in distribution.choices]
            codes = [choices.index(str(v)) if v is not None else -1 for v in values]
            dimensions.append(
                {"label": name, "values": codes, "tickvals": list(range(len(choices))), "ticktext": choices}
            )
        elif getattr(distribution, "log", False):
            dimensions.append({"label": f"log10 {name}", "values": [math.log10(v) if v else 0.0 for v in values]})
        else:
            dimensions.append({"label": name, "values": [v if v is not None else 0.0 for v in values]})
    return dimensions


def all_trials_frame(data: an.StudyData) -> pd.DataFrame:
    """Every trial, one row each, for the report's sortable table."""
    trials = data.trials.sort_values("number")
    return pd.DataFrame(
        {
            "trial": trials["number"].astype(int),
            "state": trials["state"].str.lower(),
            f"val {data.metric}": trials["value"],
            f"test {data.metric}": trials["test_value"],
            "depth": trials["depth"].astype("Int64"),
            "widths": [", ".join(str(w) for w in ws) if ws is not None else None for ws in trials["widths"]],
            "dropouts": [", ".join(f"{d:.2f}" for d in ds) if ds is not None else None for ds in trials["dropouts"]],
            "params": trials["n_params"].astype("Int64"),
            "epochs": trials["epochs_run"].astype("Int64"),
            "seconds": trials["train_seconds"],
        }
    )
