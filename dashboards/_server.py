"""Start optuna-dashboard on a study storage, with the trials' artifact store."""

from __future__ import annotations

from pathlib import Path
import re
import sys


# user:password@ in a database URL; the password is everything up to the last "@" before the host.
_PASSWORD = re.compile(r"(?P<head>^[\w+.-]+://[^:/@]*:)(?P<password>.*)(?P<tail>@[^@]*$)")


def mask_password(storage_url: str) -> str:
    """Hide the password of a storage URL: ``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``.

    Args:
        storage_url: An Optuna storage URL.

    Returns:
        The URL with any password replaced by ``***``.
    """
    return _PASSWORD.sub(r"\g<head>***\g<tail>", storage_url)


def launch_dashboard(
    storage_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    artifact_dir: str | Path | None = None,
) -> None:
    """Run optuna-dashboard on ``storage_url`` until interrupted.

    Args:
        storage_url: Optuna storage URL of the studies (``sqlite:///study.db``, ``postgresql://...``).
        host: Address to listen on; the default keeps the dashboard on this machine.
        port: Port to listen on.
        artifact_dir: Folder of the trials' file-system artifact store (trained weights), so they can
            be browsed and downloaded; ``None`` serves the dashboard without artifacts.

    Raises:
        ValueError: If the port is out of range or the storage cannot be opened; the message shows
            the URL with its password masked.

    Example:
        >>> from archsearch.dashboards import launch_dashboard
        >>> launch_dashboard("sqlite:///study.db", port=8080)  # doctest: +SKIP
    """
    if not 0 < port < 65536:
        raise ValueError(f"The 'port' parameter must be an int in the range [1, 65535]. Got {port} instead.")
    import optuna
    from optuna.artifacts import FileSystemArtifactStore
    import optuna_dashboard

    shown = mask_password(storage_url)
    if storage_url.startswith("sqlite:///") and not Path(storage_url.removeprefix("sqlite:///")).is_file():
        # SQLite would silently create an empty database and the dashboard would show no study.
        raise ValueError(f"No SQLite file at {shown}. Pass the storage URL the search wrote to.")
    try:
        storage = optuna.storages.RDBStorage(storage_url, skip_compatibility_check=True, skip_table_creation=True)
    except Exception as e:
        # The library's message may repeat the URL, password included, so it is not chained.
        raise ValueError(
            f"Cannot open the storage {shown}: {type(e).__name__}. Check the URL and that the database is reachable."
        ) from None
    store = None
    if artifact_dir is not None:
        Path(artifact_dir).mkdir(parents=True, exist_ok=True)
        store = FileSystemArtifactStore(str(artifact_dir))
    artifacts = f"artifacts in {artifact_dir}" if store is not None else "no artifact store"
    print(f"optuna-dashboard on {shown} ({artifacts}): http://{host}:{port}/dashboard/", file=sys.stderr)
    optuna_dashboard.run_server(storage, host=host, port=port, artifact_store=store)
