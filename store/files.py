"""Where a store keeps the files it writes (exported datasets, trained adapters).

Each store has a folder of its own beside it, named after its file (`leafe.db` ->
`leafe.db-files/`, as SQLite names `leafe.db-wal`), so two stores in one folder never
write the same file: `compare.db` and `navigation.db` both export run 1, to
`compare.db-files/runs/run-1/` and `navigation.db-files/runs/run-1/`.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

FOLDER_SUFFIX = "-files"


def store_path(db: sqlite_utils.Database) -> Path | None:
    """The store's own file, or None for a store in memory."""
    for row in db.execute("PRAGMA database_list").fetchall():
        if row[1] == "main" and row[2]:
            return Path(row[2]).resolve()
    return None


def folder_of(store_file: str | Path) -> Path:
    """The folder of files belonging to the store at `store_file`."""
    path = Path(store_file).resolve()
    return path.with_name(path.name + FOLDER_SUFFIX)


def folder(db: sqlite_utils.Database) -> Path:
    """The folder this store writes its files to (a store in memory: the working folder's
    `leafe-files`)."""
    path = store_path(db)
    return folder_of(path) if path else Path.cwd() / f"leafe{FOLDER_SUFFIX}"


def dataset_file(db: sqlite_utils.Database, run_id: int | None, name: str) -> Path:
    """The default file of a dataset: `runs/run-<id>/<name>.jsonl` in the store's folder."""
    return folder(db) / "runs" / (f"run-{run_id}" if run_id is not None else "no-run") / f"{name}.jsonl"


def adapter_folder(db: sqlite_utils.Database, name: str) -> Path:
    """The default folder of an adapter: `adapters/<name>` in the store's folder."""
    return folder(db) / "adapters" / name
