"""archsearch.dashboards: plotly reports of a study and the optuna-dashboard launcher.

Example:
    >>> import optuna
    >>> from archsearch.dashboards import build_report
    >>> study = optuna.load_study(study_name="demo", storage="sqlite:///demo.db")  # doctest: +SKIP
    >>> report = build_report(study)  # doctest: +SKIP
    >>> report.write_html("report.html")  # doctest: +SKIP
"""

from archsearch.dashboards._base import ReportError, ReportFigure
from archsearch.dashboards._report import Report, ReportTable, build_report, notable_trials
from archsearch.dashboards._sensitivity import build_sensitivity_report
from archsearch.dashboards._server import launch_dashboard
from archsearch.dashboards._size_figures import (
    plot_layer_shapes,
    plot_metric_vs_depth,
    plot_metric_vs_params,
    plot_metric_vs_widths,
)
from archsearch.dashboards._training_figures import (
    plot_dropout_by_size,
    plot_importance,
    plot_learning_curves,
    plot_pruning,
    plot_spread_vs_size,
)

__all__ = [
    "Report",
    "ReportError",
    "ReportFigure",
    "ReportTable",
    "build_report",
    "build_sensitivity_report",
    "launch_dashboard",
    "notable_trials",
    "plot_dropout_by_size",
    "plot_importance",
    "plot_layer_shapes",
    "plot_learning_curves",
    "plot_metric_vs_depth",
    "plot_metric_vs_params",
    "plot_metric_vs_widths",
    "plot_pruning",
    "plot_spread_vs_size",
]
