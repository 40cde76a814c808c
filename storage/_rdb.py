"""Optuna RDB storage with engine settings that hold up under several worker processes."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
import warnings
from typing import Any, Callable, Iterator

import optuna
import sqlalchemy
from sqlalchemy.exc import SQLAlchemyError

from archsearch.storage._retry import DB_RETRY_SECONDS, DatabaseUnavailable, RetryingRDBStorage, retry_transient
from archsearch.storage._url import StorageError, backend_of, mask_url, sqlite_path

__all__ = ["make_storage", "rdb_backend", "SQLITE_BUSY_TIMEOUT_S"]

# Several local workers write to one SQLite file; waiting this long for the write lock keeps
# "database is locked" from surfacing as failed trials.
SQLITE_BUSY_TIMEOUT_S = 120
POOL_RECYCLE_S = 300


def _engine_kwargs(backend: str, pool_size: int) -> dict[str, Any]:
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    # A connection idle for minutes (a long trial) may have been closed by the server or a firewall, so
    # one older than POOL_RECYCLE_S is replaced when taken from the pool. That costs a new connection
    # every few minutes, where a ping before every checkout (pool_pre_ping) costs a round trip per
    # transaction: some 15 per trial.
    return {"pool_size": pool_size, "max_overflow": pool_size, "pool_recycle": POOL_RECYCLE_S}


def rdb_backend(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDB storage behind `storage` (a study's storage wraps it in Optuna's write-through cache); else None."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def _serialize_sqlite_transactions(engine: sqlalchemy.engine.Engine) -> None:
    """Make every SQLite transaction take the write lock when it begins (BEGIN IMMEDIATE); sync less often.

    Python's sqlite3 driver starts a transaction only at the first write, so a read-then-write such as
    Optuna's "claim this WAITING trial" runs its read outside any transaction: two worker processes can
    both read WAITING and both claim the same trial. With BEGIN IMMEDIATE the second one waits for the
    first to commit and then sees RUNNING. (SQLAlchemy's documented recipe for pysqlite.)
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, connection_record) -> None:
        dbapi_connection.isolation_level = None
        # In WAL mode, NORMAL syncs at checkpoints instead of at every commit: the file cannot be
        # corrupted, and only a power cut (not a crash of a worker) can lose the last commits.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # pooled connections were opened before the listeners existed


def _enable_wal(url: str) -> None:
    path = sqlite_path(url)
    if path is None:
        return
    if not path.parent.exists():
        raise StorageError(
            f"The SQLite storage {url!r} is in the folder {str(path.parent)!r}, which does not exist. "
            "Create the folder or point 'storage' elsewhere."
        )
    # WAL lets readers (the dashboard, status) run while a worker writes; the mode persists in the file.
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


# Optuna's RDBStorage creates its schema by checking for each table and then creating it, and then stamps
# the schema version: processes that start together on an empty database (every node of a cluster running
# `archsearch worker` at once) pass the checks together and collide ("table ... already exists", a
# duplicate version row). One lock per database makes them take turns; once the tables exist each turn
# is a few reads. Holders are released by the server (or the kernel) if their process dies.
_SCHEMA_LOCK = "archsearch-schema"
_PG_SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(_SCHEMA_LOCK.encode()).digest()[:8], "big", signed=True)
_MYSQL_SCHEMA_LOCK_WAIT_S = 600  # MariaDB's GET_LOCK takes no "forever"; a schema is made in seconds


@contextlib.contextmanager
def _schema_lock(url: str, backend: str) -> Iterator[None]:
    """Hold this database's schema lock: an advisory lock (PostgreSQL), a named lock (MariaDB), a folder lock (SQLite)."""
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is None:  # in memory: no other process can see it
            yield
            return
        # The folder, not the database file: closing any descriptor of the file would drop the locks that
        # SQLite's own connections in this process hold on it.
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # releases the lock
        return
    # A connection of its own, outside any pool: closing it ends the session, which releases the lock.
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if backend == "postgresql":
                # Advisory locks belong to one database, so one key serves them all.
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _PG_SCHEMA_LOCK_KEY})
            else:
                # Named locks are server-wide: the name carries the database (hashed to fit 64 characters).
                database = sqlalchemy.engine.make_url(url).database or ""
                name = f"{_SCHEMA_LOCK}-{hashlib.sha256(database.encode()).hexdigest()[:40]}"
                granted = connection.execute(
                    sqlalchemy.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": _MYSQL_SCHEMA_LOCK_WAIT_S}
                ).scalar()
                if granted != 1:
                    raise StorageError(
                        f"Cannot open the storage {mask_url(url)!r}: another process held its schema lock "
                        f"{name!r} for {_MYSQL_SCHEMA_LOCK_WAIT_S} s. Stop the process that is stuck creating "
                        "the tables, or rerun."
                    )
            yield
    finally:
        engine.dispose()


def make_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    heartbeat_stale_trial_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    pool_size: int = 2,
    must_exist: bool = False,
    retry_seconds: float = DB_RETRY_SECONDS,
    wait_for_database: bool = False,
) -> optuna.storages.RDBStorage:
    """Open (creating tables when needed) the Optuna storage at `url`.

    Args:
        url: SQLAlchemy URL: sqlite:///file.db, postgresql+psycopg://user@host/db, mysql+pymysql://...
        heartbeat_interval: Seconds between a running trial's heartbeats (None: no heartbeat).
        grace_period: Seconds without a heartbeat after which a running trial is declared dead.
        heartbeat_stale_trial_callback: Called for every trial failed for a stale heartbeat (e.g. a retry).
        pool_size: Connections kept per process on database servers.
        must_exist: Refuse a SQLite file that does not exist yet (for commands that only read or join:
            SQLite would otherwise create an empty database at a mistyped path).
        retry_seconds: How long every later call rides out an unreachable database (see RetryingRDBStorage).
        wait_for_database: Retry the first connection too, for `retry_seconds`. Off by default so that a
            mistyped host fails at once; a pool worker, whose controller has just connected, waits.

    Raises:
        StorageError: The URL is malformed, the backend unsupported or the database unreachable;
            the message masks the password.
    """
    backend = backend_of(url)
    path = sqlite_path(url)
    if must_exist and path is not None and not path.is_file():
        raise StorageError(
            f"No SQLite database at {str(path)!r} (from {url!r}). Pass the storage URL the search wrote to."
        )
    try:
        if backend == "sqlite":
            _enable_wal(url)
        with warnings.catch_warnings():
            # Heartbeats are flagged experimental by Optuna; they are the mechanism archsearch relies on.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)

            def connect() -> RetryingRDBStorage:
                with _schema_lock(url, backend):
                    return RetryingRDBStorage(
                        url,
                        retry_seconds=retry_seconds,
                        engine_kwargs=_engine_kwargs(backend, pool_size),
                        heartbeat_interval=heartbeat_interval,
                        grace_period=grace_period,
                        heartbeat_stale_trial_callback=heartbeat_stale_trial_callback,
                    )

            storage = retry_transient(connect, url=url, retry_seconds=retry_seconds) if wait_for_database else connect()
        if backend == "sqlite":
            _serialize_sqlite_transactions(storage.engine)
        return storage
    except DatabaseUnavailable:
        raise
    except (SQLAlchemyError, sqlite3.Error, ImportError) as e:
        # Not chained: a driver's message may repeat the URL, password included, in a traceback.
        first_line = mask_url(str(e).splitlines()[0]) if str(e) else type(e).__name__
        raise StorageError(f"Cannot open the storage {mask_url(url)!r}: {first_line}") from None
