"""The store's columns: those the schema of this leafe-tui has, and those an open store lacks
(a column another program dropped, a table it removed).

Screens read rows with `select *`, so a dropped column reaches them as a KeyError naming it
rather than as SQLite's "no such column". They ask `lacks_column_at` whether that name is a
column this store should have and has not; any other KeyError is a bug and surfaces as one.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

import sqlite_utils

READ_TIMEOUT_S = 2


def table_columns(db: sqlite_utils.Database) -> dict[str, frozenset[str]]:
    """Each table and view of the open database, and its columns as the database has them
    now (`PRAGMA table_info`)."""
    names = [
        name for (name,) in db.execute(
            "select name from sqlite_master where type in ('table', 'view') and name not like 'sqlite_%'"
        )
    ]
    return {
        name: frozenset(row[1] for row in db.execute("select * from pragma_table_info(?)", [name]))
        for name in names
    }


@functools.cache
def schema_columns() -> dict[str, frozenset[str]]:
    """Each table and view of a store this leafe-tui creates, and its columns: read from a
    fresh in-memory store with every migration applied, so it follows the migrations."""
    from store.db import apply_migrations

    db = sqlite_utils.Database(memory=True)
    try:
        apply_migrations(db)
        return table_columns(db)
    finally:
        db.close()


def missing_columns(db: sqlite_utils.Database) -> dict[str, frozenset[str]]:
    """Table -> the columns the schema gives it that the open store lacks (all of them for a
    table that is gone); tables that lack nothing are left out."""
    present = table_columns(db)
    missing = {
        table: columns - present.get(table, frozenset())
        for table, columns in schema_columns().items()
    }
    return {table: columns for table, columns in missing.items() if columns}


def lacks_column(db: sqlite_utils.Database, name: str) -> bool:
    """Whether `name` is a column the schema has and the open store lacks in some table."""
    return any(name in columns for columns in missing_columns(db).values())


def lacks_column_at(path: str | Path, name: str) -> bool:
    """`lacks_column` for the store at `path`, read through a read-only connection of its own
    (any thread may ask). A store that cannot be read at all answers False: nothing says
    the name was one of its columns."""
    try:
        connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=READ_TIMEOUT_S)
    except (sqlite3.Error, OSError, ValueError):
        return False
    try:
        return lacks_column(sqlite_utils.Database(connection), name)
    except sqlite3.Error:
        return False
    finally:
        connection.close()
