"""The size front (issue #26): quality against each size measure, its hypervolume over the search, its table.

Every search trial stores its parameters and FLOPs (before training) and its measured latency (after), so
these read single- and multi-objective studies alike; trials over `[study] max_latency_ms` are drawn apart
and never on the front. The front of one measure is computed by `archsearch.stats.front_indices`; the knee is
the smallest front member within the knee tolerance of the best, the linear model the best depth-0 trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

import archsearch.stats as an
from archsearch.dashboards._base import ReportFigure, hover, log_axis, not_drawable, style

__all__ = ["MEASURES", "Front", "front_figure", "front_table", "fronts", "hypervolume_figure"]

# Column of StudyData.trials, axis title.
MEASURES = {
    "size_params": "parameters shipped (log scale)",
    "size_flops": "FLOPs per row (log scale)",
    "latency_ms": "latency at batch 1, ms (log scale)",
}
UNSIZED = "No complete trial stores its size (trials before 2026-12-07 stored none), so there is no size front."


@dataclass(frozen=True)
class Front:
    """One measure's front: the feasible complete trials with that measure, the front members (by increasing
    size), the knee's trial number and the linear model's (None when the study has none on it)."""

    measure: str
    trials: pd.DataFrame
    front: pd.DataFrame
    knee: int | None
    linear: int | None


def fronts(data: an.StudyData, knee_tolerance: float) -> list[Front]:
    """The front of every measure that at least two feasible complete trials have."""
    done = data.complete[data.complete["feasible"].astype(bool)]
    out = []
    for measure in MEASURES:
        rows = done[done[measure].notna() & (done[measure] > 0)]
        if len(rows) < 2:
            continue
        front = rows.iloc[an.front_indices(list(rows["score"]), list(rows[measure]))]
        best = front["score"].max()
        near = front[front["score"] >= best - knee_tolerance]
        knee = int(near.iloc[0]["number"]) if not near.empty else None
        linear = rows[rows["depth"] == 0].sort_values(["score", "number"], ascending=[False, True])
        out.append(Front(measure, rows, front, knee, None if linear.empty else int(linear.iloc[0]["number"])))
    return out


def front_figure(data: an.StudyData, knee_tolerance: float) -> ReportFigure:
    """The quality of every complete trial against each size measure, one panel each, front and knee marked."""
    from plotly.subplots import make_subplots

    key, title = "size_front", "Quality vs size: the front"
    found = fronts(data, knee_tolerance)
    if not found:
        return not_drawable(key, title, UNSIZED)
    fig = make_subplots(rows=1, cols=len(found), subplot_titles=[MEASURES[f.measure].split(" (")[0] for f in found])
    for col, f in enumerate(found, start=1):
        _add_panel(fig, f, data, col, first=col == 1)
        fig.update_xaxes(log_axis(f.trials[f.measure], MEASURES[f.measure]), row=1, col=col)
    infeasible = int((~data.complete["feasible"].astype(bool)).sum())
    style(fig, title, yaxis_title=data.metric_label, height=460)
    knees = "; ".join(f"{f.measure}: trial #{f.knee}" for f in found if f.knee is not None)
    caption = (
        f"Each dot is one of the {len(found[0].trials)} feasible complete trials at its size; the black step line is "
        f"the front (no trial does better for less). The star is the knee, the smallest front member within "
        f"{knee_tolerance:g} {data.metric} of the best ({knees}); the red cross is the linear model."
    )
    if infeasible:
        verb = "is" if infeasible == 1 else "are"
        caption += f" {an.plural(infeasible, 'trial')} over [study] max_latency_ms {verb} infeasible and left out."
    return ReportFigure(key=key, title=title, caption=caption, figure=fig)


def _add_panel(fig, f: Front, data: an.StudyData, col: int, *, first: bool) -> None:
    import plotly.graph_objects as go

    x, y = f.measure, "value"
    fig.add_trace(
        go.Scatter(x=f.trials[x], y=f.trials[y], mode="markers", name="trial", showlegend=first,
                   marker={"color": "#9ecae1", "size": 7}, hovertext=hover(f.trials), hoverinfo="text"),
        row=1, col=col,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=f.front[x], y=f.front[y], mode="lines+markers", name="front", showlegend=first,
                   line={"color": "black", "shape": "hv"}, marker={"color": "black", "size": 6}),
        row=1, col=col,
    )  # fmt: skip
    for number, name, marker in (
        (f.knee, "knee", {"symbol": "star", "size": 16, "color": "gold", "line": {"color": "black", "width": 1}}),
        (f.linear, "linear model", {"symbol": "x", "size": 12, "color": "#d62728"}),
    ):
        if number is None:
            continue
        row = f.trials[f.trials["number"] == number].iloc[0]
        fig.add_trace(
            go.Scatter(x=[row[x]], y=[row[y]], mode="markers", name=name, showlegend=first, marker=marker),
            row=1, col=col,
        )  # fmt: skip


def hypervolume_figure(data: an.StudyData) -> ReportFigure:
    """The hypervolume of the quality vs parameters front after each trial (in the order trials were numbered)."""
    import plotly.graph_objects as go

    key, title = "size_hypervolume", "Front hypervolume over the search"
    done = data.complete[data.complete["feasible"].astype(bool) & data.complete["size_params"].notna()]
    done = done.sort_values("number")
    if len(done) < 2:
        return not_drawable(key, title, UNSIZED)
    ref_score, ref_cost = float(done["score"].min()), float(done["size_params"].max()) * 2
    history = an.hypervolume_history(list(done["score"]), list(done["size_params"]), ref_score, ref_cost)
    fig = go.Figure(go.Scatter(x=done["number"], y=history, mode="lines+markers", line={"shape": "hv"}))
    style(fig, title, xaxis_title="trial number", yaxis_title="hypervolume (score x decades of parameters)")
    caption = (
        f"The area the front of {data.metric} against parameters (log10) dominates, after each of the "
        f"{len(done)} feasible complete trials, from the worst trial's {data.metric} and twice the largest network; "
        "a flat end says the last trials no longer moved the front."
    )
    return ReportFigure(key=key, title=title, caption=caption, figure=fig)


def front_table(data: an.StudyData, knee_tolerance: float) -> tuple[str, str, pd.DataFrame]:
    """The members of the quality vs parameters front, smallest first, with every size measure: the table's
    title, caption and rows (the report makes it a `ReportTable`)."""
    found = {f.measure: f for f in fronts(data, knee_tolerance)}
    f = found.get("size_params")
    if f is None:
        return "The size front", UNSIZED, pd.DataFrame()
    frame = pd.DataFrame(
        {
            "trial": f.front["number"].astype(int),
            f"val {data.metric}": f.front["value"],
            "parameters": f.front["size_params"].astype(int),
            "FLOPs per row": f.front["size_flops"].astype(int),
            "latency ms": f.front["latency_ms"].round(4),
            "widths": f.front["widths"],
            "role": ["knee" if n == f.knee else "linear model" if n == f.linear else "" for n in f.front["number"]],
        }
    )
    caption = (
        f"The {len(frame)} trials no other feasible trial beats on both val {data.metric} and parameters, of "
        f"{len(f.trials)}; `archsearch export --max-params N` ships the best of them within N."
    )
    return "The size front", caption, frame.reset_index(drop=True)
