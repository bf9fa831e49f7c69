"""Experience notes: what a reflector (or a person) wrote about a step, and the step the
branches replace. Every note is inserted here, whoever wrote it."""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

from store.db import now
from store.records import Note


def add(
    db: sqlite_utils.Database,
    *,
    node_id: int,
    rollback_node_id: int,
    text: str,
    author: str,
    fallback_reason: str = "",
) -> int:
    """Store a note on `node_id` saying to redo `rollback_node_id`; return its id.
    `author` is template, model or human; `fallback_reason` says why a model's note fell
    back to the template."""
    return db["notes"].insert(
        {
            "node_id": node_id,
            "rollback_node_id": rollback_node_id,
            "text": text,
            "author": author,
            "fallback_reason": fallback_reason,
            "created_at": now(),
        }
    ).last_pk


def get(db: sqlite_utils.Database, note_id: int) -> Note:
    return Note.from_row(db["notes"].get(note_id))


def texts(db: sqlite_utils.Database, note_ids: Iterable[int]) -> dict[int, str]:
    """The text of each note by id."""
    wanted = sorted(set(note_ids))
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    return dict(db.execute(f"select id, text from notes where id in ({marks})", wanted).fetchall())


def exists_on(db: sqlite_utils.Database, node_id: int) -> bool:
    """Whether a step was reflected on already (a resumed run does not reflect twice)."""
    return db.execute("select 1 from notes where node_id = ?", [node_id]).fetchone() is not None


def count_by_author(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    return dict(
        db.execute(
            """select author, count(*) from notes join nodes on nodes.id = notes.node_id
               join episodes on episodes.id = nodes.episode_id where episodes.run_id = ?
               group by author""",
            [run_id],
        ).fetchall()
    )


def to_expand(db: sqlite_utils.Database, run_id: int, branch_depth: int) -> list[Note]:
    """Notes on exploration steps at `branch_depth` that no branch has started from yet,
    oldest first, each with its episode."""
    rows = db.query(
        """select notes.*, nodes.episode_id from notes join nodes on nodes.id = notes.node_id
           join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = 'explore' and nodes.branch_depth = ?
           and not exists (select 1 from nodes b where b.note_id = notes.id and b.branch_depth > 0)
           order by notes.id""",
        [run_id, branch_depth],
    )
    return [Note.from_row(row) for row in rows]
