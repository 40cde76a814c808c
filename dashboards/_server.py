"""Start optuna-dashboard on a study storage, with the trials' artifact store."""

from __future__ import annotations

import sys
from pathlib import Path

from archsearch.dashboards._base import ReportError
from archsearch.storage import default_artifact_dir, make_storage, mask_url, open_artifact_store


def launch_dashboard(
    storage_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    artifact_dir: str | Path | None = None,
) -> None:
    """Run optuna-dashboard on ``storage_url`` until interrupted.

    Args:
        storage_url: Optuna storage URL of the studies (``sqlite:///study.db``, ``postgresql+psycopg://...``).
        host: Address to listen on; the default keeps the dashboard on this machine.
        port: Port to listen on.
        artifact_dir: Folder of the trials' artifact store (trained weights), so they can be browsed and
            downloaded; default: where archsearch puts them for this storage (beside a SQLite file).

    Raises:
        ValueError: If the port is out of range or the storage cannot be opened; the message shows
            the URL with its password masked.

    Example:
        >>> from archsearch.dashboards import launch_dashboard
        >>> launch_dashboard("sqlite:///archsearch.db", port=8080)  # doctest: +SKIP
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ReportError(f"The 'port' parameter must be an int in the range [1, 65535]. Got {port!r} instead.")
    import optuna_dashboard

    shown = mask_url(storage_url)
    # must_exist: SQLite would silently create an empty database and the dashboard would show no study.
    storage = make_storage(storage_url, must_exist=True)
    folder = Path(artifact_dir) if artifact_dir is not None else default_artifact_dir(storage_url)
    store = open_artifact_store(folder)
    _list_figures_in_report_order()
    print(f"optuna-dashboard on {shown} (artifacts in {folder}): http://{host}:{port}/dashboard/", file=sys.stderr)
    optuna_dashboard.run_server(storage, host=host, port=port, artifact_store=store)


def _list_figures_in_report_order() -> None:
    """Make this server list pushed figures sorted by id, which for archsearch's ids is report order.

    optuna-dashboard collects the ids in a set, so its order changes with every process; archsearch
    numbers its ids (``archsearch_01_...``) and sorts them here. A plain ``optuna-dashboard`` shows the
    same figures in its own order.
    """
    from optuna_dashboard import _custom_plot_data

    unsorted = _custom_plot_data.list_graph_object_ids
    if getattr(unsorted, "archsearch_sorted", False):
        return

    def sorted_ids(system_attrs: dict) -> list[str]:
        return sorted(unsorted(system_attrs))

    sorted_ids.archsearch_sorted = True
    _custom_plot_data.list_graph_object_ids = sorted_ids
