"""What a report figure is, and the formatting every figure shares."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from archsearch.base import ArchsearchError
from archsearch.stats import MetricRange, format_number, metric_range

if TYPE_CHECKING:
    import plotly.graph_objects as go


# One colour per depth, the same in every figure; depth 0 (the linear baseline) is the loud one.
_DEPTH_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
SHAPE_COLORS = {
    "uniform": "#1f77b4",
    "funnel": "#ff7f0e",
    "expanding": "#2ca02c",
    "diamond": "#9467bd",
    "irregular": "#7f7f7f",
}


class ReportError(ArchsearchError, ValueError):
    """A report or dashboard that cannot be made as asked (a parameter out of range, a study it cannot read)."""


@dataclass
class ReportFigure:
    """One figure of the report, or the sentence saying why it cannot be drawn.

    Attributes:
        key: Stable identifier (also the optuna-dashboard graph object id).
        title: Short title.
        caption: What the figure shows and what it says about this study; the reason when not drawn.
        figure: The plotly figure, or ``None`` when the study cannot support it.
        reason: Why the figure is not drawn (``None`` when it is).
    """

    key: str
    title: str
    caption: str
    figure: go.Figure | None = None
    reason: str | None = None

    @property
    def drawable(self) -> bool:
        """Whether a figure was drawn."""
        return self.figure is not None


def not_drawable(key: str, title: str, reason: str) -> ReportFigure:
    """A report entry for a figure the study cannot support."""
    return ReportFigure(key=key, title=title, caption=reason, figure=None, reason=reason)


def unwrap(entry: ReportFigure) -> go.Figure:
    """Return the figure of ``entry``, for the notebook functions.

    Raises:
        ValueError: With the reason, when the study cannot support the figure.
    """
    if entry.figure is None:
        raise ValueError(f"Cannot draw '{entry.title}': {entry.reason}")
    return entry.figure


def depth_color(depth: float) -> str:
    """The colour of a depth in every figure."""
    return _DEPTH_COLORS[int(depth) % len(_DEPTH_COLORS)]


def depth_name(depth: float) -> str:
    """``"0 (linear)"``, ``"1 layer"``, ``"2 layers"``."""
    d = int(depth)
    return "0 (linear)" if d == 0 else f"{d} layer" if d == 1 else f"{d} layers"


def log_axis(values: pd.Series | list[float], title: str | None = None) -> dict[str, Any]:
    """A log x-axis with ticks at 1, 2 and 5 times each power of ten (powers alone over wide ranges), as counts.

    Plotly's own log ticks over less than a decade read ``5 6 7 8 9 1000 2 3``; these read at a glance.
    """
    named = {"title": title} if title is not None else {}
    finite = [float(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    if not finite:
        return {"type": "log", **named}
    low, high = min(finite), max(finite)
    # Over more than two decades 1-2-5 ticks crowd a half-width panel; powers of ten are enough.
    steps = (1, 2, 5) if high / low <= 300 else (1,)
    ticks = [
        m * 10**e
        for e in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
        for m in steps
        if max(1.0, low / 1.5) <= m * 10**e <= high * 1.5
    ]
    return {"type": "log", **named, "tickvals": ticks, "ticktext": [f"{t:,.0f}" for t in ticks]}


def fit_metric(frame: pd.DataFrame, maximize: bool, include: list[float] | tuple = ()) -> MetricRange:
    """The metric range of the trials a figure draws (`archsearch.stats.metric_range`): every figure's one way."""
    return metric_range(frame["value"].tolist(), frame["number"].tolist(), maximize=maximize, include=include)


def far_off_symbol(frange: MetricRange, axis: str = "y") -> str:
    """The marker of a trial drawn at the edge: a triangle pointing past it, open (``axis``: where the metric is)."""
    if axis == "x":
        return "triangle-left-open" if frange.maximize else "triangle-right-open"
    return "triangle-down-open" if frange.maximize else "triangle-up-open"


def symbols(
    frange: MetricRange, values: pd.Series | list[float], default: str = "circle", axis: str = "y"
) -> list[str]:
    """Per point: the far-off marker where the value is past the fence, else ``default``."""
    return [far_off_symbol(frange, axis) if frange.is_far(float(v)) else default for v in values]


def far_off_trace(frange: MetricRange, x: list, frame: pd.DataFrame, showlegend: bool = True) -> go.Scatter | None:
    """The far-off trials of ``frame`` at the edge, for figures whose own traces cannot mark single points (boxes)."""
    import plotly.graph_objects as go

    far = [i for i, v in enumerate(frame["value"]) if frange.is_far(float(v))]
    if not far:
        return None
    return go.Scatter(
        x=[x[i] for i in far],
        y=[frange.edge] * len(far),
        mode="markers",
        name="far off, drawn at the edge",
        legendgroup="far off",
        showlegend=showlegend,
        marker={"symbol": far_off_symbol(frange), "size": 11, "color": "black", "line": {"width": 2}},
        hovertext=[hover(frame.iloc[[i]])[0] for i in far],
        hoverinfo="text",
    )


def with_far_off(
    caption: str, frange: MetricRange, how: str = "at the edge of the metric axis (open triangles)", noun: str = "trial"
) -> str:
    """``caption`` with the count of far-off trials (or of ``noun``) appended, when there are any."""
    said = frange.sentence(how, noun)
    return f"{caption} {said}" if said else caption


def format_cell(value: object) -> str:
    """A table cell in the report's number style: ``0.9189``, ``9,371``, ``8, 64, 128``, ``n/a``."""
    if value is None or value is pd.NA:
        return "n/a"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return format_number(float(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def describe(row: pd.Series) -> str:
    """A trial in words: ``trial #7 (2 layers of 64, 32; 3,587 params)``."""
    size = f"{int(row['n_params']):,} params" if math.isfinite(row["n_params"]) else "size unknown"
    if row["depth"] == 0:
        return f"trial #{int(row['number'])} (linear model; {size})"
    widths = ", ".join(str(w) for w in row["widths"]) if row["widths"] is not None else "?"
    return f"trial #{int(row['number'])} ({depth_name(row['depth'])} of {widths}; {size})"


def hover(frame: pd.DataFrame) -> list[str]:
    """Hover text for each trial: number, widths, dropouts, size and metric."""
    texts = []
    for _, r in frame.iterrows():
        widths = list(r["widths"]) if r["widths"] is not None else "?"
        dropouts = [round(d, 2) for d in r["dropouts"]] if r["dropouts"] is not None else "?"
        size = f"{int(r['n_params']):,}" if math.isfinite(r["n_params"]) else "?"
        texts.append(
            f"trial #{int(r['number'])}<br>widths {widths}<br>dropouts {dropouts}"
            f"<br>{size} params<br>value {format_number(r['value'])}"
        )
    return texts


def style(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    """Apply the look shared by every report figure."""
    fig.update_layout(
        title={"text": title, "x": 0.01},
        template="plotly_white",
        height=layout.pop("height", 430),
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"title": layout.pop("legend_title", None)},
        **layout,
    )
    return fig


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
