"""The report's explanation figures: what the exported model responds to, from the result `archsearch explain`
stored in the study (`keys.EXPLANATION`); none when explain has not run with the study's storage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from archsearch.dashboards._base import ReportFigure, style
from archsearch.stats import format_number
from archsearch.storage import keys, stored_value

__all__ = ["explanation_figures", "importance_figure", "per_class_figure"]

_SHOWN = 20  # columns drawn, the most important by Integrated Gradients


def explanation_figures(study: optuna.Study) -> list[ReportFigure]:
    """The explanation's figures, or none when the study holds no explanation."""
    result = stored_value(study.user_attrs, keys.EXPLANATION)
    if not isinstance(result, Mapping) or "attributions" not in result:
        return []
    figures = [importance_figure(result)]
    if "per_class" in result["attributions"]["integrated_gradients"]:
        figures.append(per_class_figure(result))
    return figures


def _ranked(result: Mapping[str, Any]) -> list[str]:
    importance = result["attributions"]["integrated_gradients"]["importance"]
    return sorted(importance, key=lambda c: -importance[c])[:_SHOWN]


def importance_figure(result: Mapping[str, Any]) -> ReportFigure:
    """Integrated Gradients and permutation importance per column, side by side, the top columns first."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    found = result["attributions"]
    ig, permutation = found["integrated_gradients"], found["permutation"]
    columns = _ranked(result)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("Integrated Gradients", "Permutation"))
    fig.add_trace(go.Bar(x=[ig["importance"][c] for c in columns], y=columns, orientation="h", name="IG"), 1, 1)
    fig.add_trace(
        go.Bar(
            x=[permutation["drop"][c] for c in columns],
            y=columns,
            orientation="h",
            name="permutation",
            error_x={"type": "data", "array": [permutation["drop_sd"][c] for c in columns]},
        ),
        1,
        2,
    )
    title = "What the exported model responds to"
    style(fig, title, height=160 + 24 * len(columns), showlegend=False, yaxis={"autorange": "reversed"})
    fig.update_xaxes(title_text=f"mean |attribution| ({ig['output']})", row=1, col=1)
    fig.update_xaxes(title_text=f"drop of test {permutation['metric']}", row=1, col=2)
    caption = (
        f"The {len(columns)} columns the exported model (trial {result['model'].get('trial')}, {result['model']['kind']}) "
        f"attributes most to, on n = {found['n_rows']} held-out test rows. Left: Integrated Gradients ({ig['steps']} "
        f"steps from {ig['baseline']}), {ig['importance_rule']}. Right: the drop of the test {permutation['metric']} "
        f"({format_number(permutation['value'])} unshuffled) when the column is shuffled, mean ± SD over "
        f"{permutation['repeats']} shuffles. " + _agreement(found)
    )
    return ReportFigure("explain_importance", title, caption, fig)


def _agreement(found: Mapping[str, Any]) -> str:
    """The methods' agreement and the members' stability, in words with their n."""
    rho = found["ig_vs_permutation"]["mean_spearman"]
    n_columns = len(found["integrated_gradients"]["importance"])
    words = "" if rho is None else f"The two rankings agree with Spearman {rho:.2f} over n = {n_columns} columns."
    members = found.get("members")
    if members and members["integrated_gradients"]["mean_spearman"] is not None:
        stability = members["integrated_gradients"]
        words += (
            f" Over the ensemble's n = {members['n']} members, Integrated Gradients' ranks agree with mean Spearman "
            f"{stability['mean_spearman']:.2f} (lowest {stability['min_spearman']:.2f}, {stability['n_pairs']} pairs)."
        )
    return words


def per_class_figure(result: Mapping[str, Any]) -> ReportFigure:
    """Which columns push towards each class: mean signed Integrated Gradients per class and column."""
    import plotly.graph_objects as go

    found = result["attributions"]
    per_class = found["integrated_gradients"]["per_class"]
    columns, classes = _ranked(result), list(per_class)
    values = [[per_class[k][c] for c in columns] for k in classes]
    bound = max((abs(v) for row in values for v in row), default=1.0) or 1.0
    fig = go.Figure(go.Heatmap(z=values, x=columns, y=classes, zmin=-bound, zmax=bound, colorscale="RdBu_r", zmid=0.0))
    title = "Which columns push towards each class"
    style(fig, title, height=200 + 28 * len(classes), xaxis_title=None, yaxis_title="class")
    caption = (
        f"Mean Integrated Gradients attribution of each class's log-probability, per column (the {len(columns)} most "
        f"important), over n = {found['n_rows']} held-out test rows: red pushes towards the class, blue away from "
        f"it, relative to the baseline ({found['integrated_gradients']['baseline']})."
    )
    return ReportFigure("explain_per_class", title, caption, fig)
