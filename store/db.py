"""Opening a store: validate the file without touching it, then WAL, foreign keys, migrations.

A store is one SQLite file. Before anything is written we check, read-only, that the file
is SQLite, is not truncated, passes `PRAGMA quick_check` and is not from a newer schema,
so a bad file gets a one-line `StoreError` and stays byte-for-byte as it was.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from store.errors import StoreError, StoreLocked
from store.migrations import MIGRATIONS

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
    (it becomes a new store).
    """
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"store {path} is a directory, not a SQLite file")
    size = path.stat().st_size
    if size == 0:
        return
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            # quick_check reads every page: worth it below a size where it costs < 1 s.
            check = "PRAGMA quick_check" if size < QUICK_CHECK_LIMIT else "PRAGMA schema_version"
            result = connection.execute(check).fetchone()
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
    if version > schema_version():
        raise StoreError(
            f"store {path} has schema version {version}, newer than this leafe-tui knows "
            f"({schema_version()}); upgrade leafe-tui to open it"
        )


def open_store(path: str | Path, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (or create) the store at `path`, in WAL mode with foreign keys, migrated."""
    path = Path(path)
    check_store_file(path)
    if not path.parent.exists():
        raise StoreError(f"store {path}: folder {path.parent} does not exist")
    try:
        connection = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
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
        db["_migrations"].create({"id": int, "name": str, "applied_at": str}, pk="id")
    done = {row["name"] for row in db["_migrations"].rows}
    applied = []
    for number, function in enumerate(MIGRATIONS, start=1):
        if function.__name__ in done:
            continue
        with db.atomic():
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
