"""A run's task splits (training, validation, test) and which test tasks are not held out,
kept as JSON on the run (`runs.splits`)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from store.queries import dumps, loads


def set_splits(db: sqlite_utils.Database, run_id: int, splits: dict[str, Any]) -> None:
    db["runs"].update(run_id, {"splits": dumps(splits)})


def get_splits(db: sqlite_utils.Database, run_id: int) -> dict[str, Any] | None:
    """The run's recorded splits, or None for a run that has none (started before they were kept)."""
    row = db.execute("select splits from runs where id = ?", [run_id]).fetchone()
    return loads(row[0], None) if row else None
