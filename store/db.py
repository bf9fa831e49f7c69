"""Opening a store: validate the file without touching it, then WAL, foreign keys, migrations.

A store is one SQLite file. Before anything is written we check, read-only, that the file
is SQLite, is not truncated, passes `PRAGMA quick_check` and is not from a newer schema,
so a bad file gets a one-line `StoreError` and stays byte-for-byte as it was.

Every statement goes through `StoreConnection`, the store's one write path: text that
UTF-8 cannot encode is stored repaired (`store.text`) instead of failing the write.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from store.errors import StoreError, StoreLocked
from store.migrations import MIGRATIONS
from store.text import storable

QUICK_CHECK_LIMIT = 256 * 1024 * 1024
BUSY_TIMEOUT_MS = 1000  # per try; with the retries below a writer waits about 8 s in all
LOCK_RETRIES = 6
T = TypeVar("T")


def now() -> str:
    """An ISO-8601 UTC timestamp with milliseconds, the store's one time format."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def schema_version() -> int:
    """How many migrations this version of leafe-tui knows."""
    return len(MIGRATIONS)


def check_store_file(path: Path) -> None:
    """Raise `StoreError` if `path` exists but is not a healthy store we can open.

    Reads only, and only through SQLite: a plain open()/close() of the file would drop
    every POSIX lock this process holds on it (another connection's, say the TUI's main
    thread), and a writer elsewhere could then damage it. A missing or empty file is fine
    (it becomes a new store) if its folder can be written.

    Refused, each in one line: a path with a NUL byte, a folder, a file that is not SQLite,
    truncated or corrupt, another application's database (tables but no leafe migrations),
    a store from a newer leafe-tui, and a store (or the folder of a new one) that cannot be
    written (an immutable file, a read-only file system).
    """
    check_store_path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
        size = path.stat().st_size if exists and not is_dir else 0
    except OSError as error:
        raise StoreError(f"store {path}: {error.strerror or error}") from None
    if is_dir:
        raise StoreError(f"store {path} is a directory, not a SQLite file")
    if size:
        check_contents(path, size)
    check_writable(path, exists)


def check_store_path(path: Path) -> None:
    """Refuse a store path no file can have (a NUL byte), before anything resolves it."""
    if "\x00" in str(path):
        raise StoreError(f"store path {str(path)!r} holds a NUL byte; name a file without one")


def check_contents(path: Path, size: int) -> None:
    """Refuse a non-empty file that is not a healthy leafe store, reading it only through a
    read-only SQLite connection."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            # quick_check reads every page: worth it below a size where it costs < 1 s.
            check = "PRAGMA quick_check" if size < QUICK_CHECK_LIMIT else "PRAGMA schema_version"
            result = connection.execute(check).fetchone()
            foreign = foreign_tables(connection, version)
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        if "not a database" in str(error):
            raise StoreError(f"store {path} is not a SQLite database") from None
        if "malformed" in str(error):
            raise StoreError(f"store {path} is corrupt or truncated ({error})") from None
        raise StoreError(f"store {path} is unreadable: {error}") from None
    if check.endswith("quick_check") and (result is None or result[0] != "ok"):
        raise StoreError(f"store {path} is corrupt or truncated: {result[0] if result else 'no answer'}")
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise StoreError(
            f"store {path} is another application's SQLite database (tables: {shown}); leafe-tui "
            "opens only its own stores or a new or empty file, and left this one as it was"
        )
    if version > schema_version():
        raise StoreError(
            f"store {path} has schema version {version}, newer than this leafe-tui knows "
            f"({schema_version()}); upgrade leafe-tui to open it"
        )


def foreign_tables(connection: sqlite3.Connection, version: int) -> list[str]:
    """The tables of a database that is not a leafe store, or [] for a leafe store or an
    empty database. A leafe store records its migrations in `_migrations`, under names this
    leafe-tui knows (a newer store's, with a higher version, are refused as newer)."""
    tables = sorted(
        name for (name,) in connection.execute("select name from sqlite_master where type = 'table'")
        if not name.startswith("sqlite_")
    )
    if not tables:
        return []
    if "_migrations" not in tables:
        return tables
    try:
        recorded = {name for (name,) in connection.execute("select name from _migrations")}
    except sqlite3.DatabaseError:
        return tables
    known = {function.__name__ for function in MIGRATIONS}
    return [] if recorded <= known or version > schema_version() else tables


def check_writable(path: Path, exists: bool) -> None:
    """Refuse a store that cannot be written before anything tries to: an immutable file
    (`chattr +i`), a read-only file system, or a folder where the new store (or its WAL
    files) cannot be created. Asked of the kernel (access(2)), which also answers for root."""
    folder = path.parent if str(path.parent) else Path(".")
    if exists and not os.access(path, os.W_OK):
        raise StoreError(
            f"store {path} cannot be written (an immutable or read-only file, or a read-only file system); "
            "leafe-tui writes every step to its store"
        )
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(
            f"store {path}: its folder {folder} cannot be written (immutable, read-only, or not yours), "
            "so the store and its WAL files cannot be created there"
        )


class StoreConnection(sqlite3.Connection):
    """A connection whose statements store text from outside as valid UTF-8: a parameter
    holding a lone surrogate (an exception message of generated code, say) is stored with
    U+FFFD in its place, where sqlite3 would raise UnicodeEncodeError and lose the write.
    The first try binds the parameters as given, so valid text costs nothing extra."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except UnicodeEncodeError:
            return super().execute(storable(sql), storable(parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        rows = list(parameters)  # a generator could not be replayed after a failed try
        try:
            return super().executemany(sql, rows)
        except UnicodeEncodeError:
            return super().executemany(storable(sql), [storable(row) for row in rows])


def open_store(path: str | Path, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (or create) the store at `path`, in WAL mode with foreign keys, migrated."""
    path = Path(path)
    check_store_file(path)
    if not path.parent.exists():
        raise StoreError(f"store {path}: folder {path.parent} does not exist")
    try:
        connection = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, factory=StoreConnection
        )
        db = sqlite_utils.Database(connection)
        with_lock_retry(lambda: db.execute("PRAGMA journal_mode=WAL").fetchone(), path)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        if migrate:
            with_lock_retry(lambda: apply_migrations(db), path)
    except sqlite3.DatabaseError as error:
        raise StoreError(f"store {path}: {error}") from None
    return db


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Run the migrations this store has not seen yet; return their names."""
    if "_migrations" not in db.table_names():
        db["_migrations"].create({"id": int, "name": str, "applied_at": str}, pk="id", if_not_exists=True)
    done = {row["name"] for row in db["_migrations"].rows}
    applied = []
    for number, function in enumerate(MIGRATIONS, start=1):
        if function.__name__ in done:
            continue
        # The write lock first, then the check: a TUI opening the store while a batch run
        # creates it would otherwise run the same migration twice ("table already exists").
        with transaction(db):
            if db.execute("select 1 from _migrations where name = ?", [function.__name__]).fetchone():
                continue
            function(db)
            db["_migrations"].insert({"id": number, "name": function.__name__, "applied_at": now()})
            db.execute(f"PRAGMA user_version={number}")
        applied.append(function.__name__)
    return applied


def is_locked_error(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)
    )


def with_lock_retry(action: Callable[[], T], path: str | Path = "store", *, retries: int = LOCK_RETRIES) -> T:
    """Run `action`, retrying with exponential backoff while another writer holds the lock;
    `StoreLocked` once `retries` more tries have failed too."""
    delay = 0.05
    for attempt in range(retries + 1):
        try:
            return action()
        except sqlite3.OperationalError as error:
            if not is_locked_error(error):
                raise
            if attempt == retries:
                raise StoreLocked(str(path), attempt + 1) from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


_write_lock = threading.RLock()


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database, *, retries: int = LOCK_RETRIES) -> Iterator[sqlite_utils.Database]:
    """One write transaction: all of it lands, or none of it (a killed run loses only this).

    BEGIN IMMEDIATE takes the write lock up front, retried with backoff, so two writers
    never interleave half-written steps. `retries=0` tries once (recording how a run
    ended, when the store may be the reason it ended).
    """
    with _write_lock:
        with_lock_retry(lambda: db.execute("BEGIN IMMEDIATE"), _db_path(db), retries=retries)
        try:
            yield db
            with_lock_retry(db.conn.commit, _db_path(db), retries=retries)
        except BaseException:
            # Also when the commit itself gave up: a transaction left open would make every
            # later BEGIN fail with a different error.
            if db.conn.in_transaction:
                db.conn.rollback()
            raise


def _db_path(db: sqlite_utils.Database) -> str:
    try:
        return db.execute("PRAGMA database_list").fetchone()[2] or "store"
    except sqlite3.Error:
        return "store"
