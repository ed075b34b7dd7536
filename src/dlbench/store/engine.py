"""Connecting to the results database: URLs, SQLite's settings for concurrent writers, and
error messages without driver noise."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from dlbench.errors import StoreError, require

SQLITE_BUSY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10  # a database server's connection


def to_url(db: str) -> str:
    """A path becomes a SQLite URL; anything with '://' is taken as a SQLAlchemy URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]  # psycopg 3, not psycopg2
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


# File systems several machines share: SQLite's WAL needs shared memory between its users,
# which these do not give, and their locks are not to be trusted across hosts.
NETWORK_FILESYSTEMS = (
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "cephfs",
    "glusterfs", "fuse.glusterfs", "fuse.sshfs", "afs", "panfs", "pvfs2",
)  # fmt: skip


def network_filesystem(path: str) -> str | None:
    """The type of the network file system ``path`` lives on (``nfs4``), or None."""
    import psutil

    real = Path(path).expanduser().resolve()
    best = None
    try:
        partitions = psutil.disk_partitions(all=True)
    except OSError:
        return None
    for part in partitions:
        mount = Path(part.mountpoint)
        if (real == mount or mount in real.parents) and (
            best is None or len(str(mount)) > len(best.mountpoint)
        ):
            best = part
    if best is None:
        return None
    return best.fstype if best.fstype.lower() in NETWORK_FILESYSTEMS else None


def open_engine(url: str, read_only: bool = False) -> Engine:
    try:
        if url.startswith("sqlite:///") and read_only:
            # SQLite itself refuses every write on a mode=ro connection.
            path = url.removeprefix("sqlite:///")
            engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", future=True)
            configure_sqlite(engine, read_only=True)
            return engine
        if url.startswith("sqlite:///"):
            # One folder is made (results/ beside the data, the default); a path whose
            # folder's folder is missing too is a typo, and refused.
            folder = Path(url.removeprefix("sqlite:///")).parent
            if not folder.parent.is_dir():
                raise StoreError(
                    f"cannot open the results database {url.removeprefix('sqlite:///')}: "
                    f"{folder.parent} does not exist",
                    "give --db / DLBENCH_DB a path in an existing folder",
                )
            folder.mkdir(exist_ok=True)
        connect_args: dict[str, Any] = {}
        if url.startswith("postgresql"):
            require("psycopg", "postgres", "a PostgreSQL results database")
        if url.startswith("postgresql") and "connect_timeout" not in url:
            # a server that is down or unreachable: one error line after this, not a hang
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        if read_only and url.startswith("postgresql"):
            connect_args["options"] = "-c default_transaction_read_only=on"
        engine = create_engine(url, future=True, connect_args=connect_args)
    except (OSError, SQLAlchemyError, ValueError, ImportError) as exc:
        where = url.removeprefix("sqlite:///")
        raise StoreError(
            f"cannot open the results database {where}: {exc}",
            "give a writable path or a valid SQLAlchemy URL to --db / DLBENCH_DB",
        ) from exc
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine, wal=network_filesystem(url.removeprefix("sqlite:///")) is None)
    return engine


def configure_sqlite(engine: Engine, read_only: bool = False, wal: bool = True) -> None:
    """WAL with a busy timeout, and BEGIN IMMEDIATE so that concurrent writers queue
    instead of failing with 'database is locked'. A reader takes no write lock: plain BEGIN.
    On a network file system (``wal=False``) the rollback journal instead: WAL does not
    work there."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        if not read_only:
            _journal_mode(cursor, "WAL" if wal else "DELETE")
            cursor.execute(f"PRAGMA synchronous = {'NORMAL' if wal else 'FULL'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _journal_mode(cursor: Any, mode: str) -> None:
    """Set the journal mode, waiting for a writer as a busy timeout would: SQLite answers a
    journal-mode change "database is locked" at once, without its busy handler, while another
    process is creating or switching the same file (several runs opening a new database
    together lost 5 of 40 races without this)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.01
    while True:
        try:
            cursor.execute(f"PRAGMA journal_mode = {mode}")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]


def foreign_sqlite_tables(path: str) -> set[str]:
    """The tables of an existing SQLite file that dlbench did not stamp (empty: a new, empty
    or dlbench file), read without changing a byte of it."""
    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        return set()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return set()  # opening it the usual way says what is wrong
    try:
        tables = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        }
        if "meta" in tables:
            stamped = conn.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone()
            if stamped:
                return set()
    except sqlite3.Error:
        return set()
    finally:
        conn.close()
    return tables
