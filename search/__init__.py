"""archsearch: architecture and hyperparameter search for MLPs, on Optuna and PyTorch.

`import archsearch` is light: torch, plotly and the data stack load only when a name below is used.

Example:
    >>> import archsearch
    >>> config = archsearch.load_config("examples/digits.toml")  # doctest: +SKIP
    >>> study = archsearch.run_search(config)  # doctest: +SKIP
    >>> archsearch.export_best(config.study.storage, config.study.name, "digits-model")  # doctest: +SKIP
    >>> model = archsearch.load_model("digits-model")  # doctest: +SKIP
"""

from __future__ import annotations

from archsearch.base import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "SearchConfig": "archsearch.config",
    "StudyConfig": "archsearch.config",
    "TrainConfig": "archsearch.config",
    "ConfigError": "archsearch.config",
    "load_config": "archsearch.config",
    "run_search": "archsearch.controller",
    "SearchError": "archsearch.controller",
    "export_best": "archsearch.export",
    "load_model": "archsearch.export",
    "ExportError": "archsearch.export",
    "run_sensitivity": "archsearch.sensitivity",
    "explain": "archsearch.explanations",
    "join_study": "archsearch.controller",
    "ArchsearchError": "archsearch.base",
}

__all__ = ["__version__", *_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
