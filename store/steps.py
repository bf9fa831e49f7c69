"""Where a stored step belongs: its run, and the steps before it."""

from __future__ import annotations

import sqlite_utils


def run_of_node(db: sqlite_utils.Database, node_id: int) -> int | None:
    """The run of step `node_id`, or None when the store has no such step."""
    row = db.execute(
        "select episodes.run_id from nodes join episodes on episodes.id = nodes.episode_id where nodes.id = ?",
        [node_id],
    ).fetchone()
    return row[0] if row else None
