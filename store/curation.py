"""Curation decisions on corrections, and notes written by people.

Every decision is written at once, timestamped, with who made it, and kept in
`decisions` so the last one can be undone. Statuses form a closed set.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

from store.db import now, transaction
from workbench.errors import LeafeError

STATUSES = ("proposed", "approved", "edited", "rejected")
TRAINABLE = ("approved", "edited")


def decide(
    db: sqlite_utils.Database,
    correction_id: int,
    status: str,
    *,
    reviewer: str,
    edited_action: str | None = None,
    reason: str = "",
) -> None:
    """Set a correction's status (and edited action), remembering the previous one."""
    if status not in STATUSES:
        raise LeafeError(f"unknown correction status {status!r} (one of {', '.join(STATUSES)})")
    if status == "edited" and not (edited_action or "").strip():
        raise LeafeError("an edited correction needs the edited action")
    with transaction(db):
        record_decision(db, correction_id, status, reviewer=reviewer, edited_action=edited_action, reason=reason)


def record_decision(
    db: sqlite_utils.Database,
    correction_id: int,
    status: str,
    *,
    reviewer: str,
    edited_action: str | None = None,
    reason: str = "",
) -> None:
    """`decide` without its own transaction, for stages that batch many decisions."""
    row = db.execute(
        "select status, edited_action from corrections where id = ?", [correction_id]
    ).fetchone()
    if row is None:
        raise LeafeError(f"no correction {correction_id}")
    stamp = now()
    new_edited = edited_action if status == "edited" else row[1]
    db["decisions"].insert(
        {
            "correction_id": correction_id,
            "previous_status": row[0],
            "previous_edited_action": row[1],
            "status": status,
            "edited_action": new_edited,
            "reviewer": reviewer,
            "decided_at": stamp,
        }
    )
    db["corrections"].update(
        correction_id,
        {"status": status, "edited_action": new_edited, "decided_by": reviewer, "decided_at": stamp, "reason": reason},
    )


def decide_many(db: sqlite_utils.Database, correction_ids: Iterable[int], status: str, *, reviewer: str) -> int:
    """Approve or reject a selection in one transaction; returns how many changed."""
    ids = list(correction_ids)
    if status not in ("approved", "rejected"):
        raise LeafeError("a selection can only be approved or rejected at once")
    with transaction(db):
        for correction_id in ids:
            record_decision(db, correction_id, status, reviewer=reviewer)
    return len(ids)


def undo_last(db: sqlite_utils.Database, *, reviewer: str | None = None) -> int | None:
    """Undo the latest decision (by `reviewer`, if given); returns the correction's id."""
    where, params = ("where reviewer = ?", [reviewer]) if reviewer else ("", [])
    with transaction(db):
        row = db.execute(
            f"select id, correction_id, previous_status, previous_edited_action from decisions {where} "
            "order by id desc limit 1",
            params,
        ).fetchone()
        if row is None:
            return None
        decision_id, correction_id, previous_status, previous_edited = row
        db["corrections"].update(
            correction_id,
            {"status": previous_status, "edited_action": previous_edited, "decided_by": reviewer or "", "decided_at": now()},
        )
        db["decisions"].delete(decision_id)
    return correction_id


def add_human_note(
    db: sqlite_utils.Database, node_id: int, rollback_node_id: int, text: str, *, author: str = "human"
) -> int:
    """A note written by a person on a step; `rollback_node_id` is the step it says to redo."""
    if not text.strip():
        raise LeafeError("a note needs some text")
    with transaction(db):
        return db["notes"].insert(
            {
                "node_id": node_id,
                "rollback_node_id": rollback_node_id,
                "text": text.strip(),
                "author": author,
                "created_at": now(),
            }
        ).last_pk


def set_correction_note(db: sqlite_utils.Database, correction_id: int, text: str, *, reviewer: str) -> int:
    """Replace a correction's note by one a person wrote (author `human`); returns its id."""
    row = db.execute(
        """select notes.node_id, notes.rollback_node_id from corrections
           join notes on notes.id = corrections.note_id where corrections.id = ?""",
        [correction_id],
    ).fetchone()
    if row is None:
        raise LeafeError(f"no correction {correction_id}")
    note_id = add_human_note(db, row[0], row[1], text, author="human")
    with transaction(db):
        db["corrections"].update(correction_id, {"note_id": note_id, "decided_by": reviewer, "decided_at": now()})
    return note_id


def proposed_queue(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    """Corrections of a run awaiting review, oldest first, with what the curation screen shows."""
    return corrections_of_run(db, run_id, statuses=("proposed",))


def corrections_of_run(
    db: sqlite_utils.Database, run_id: int, statuses: Iterable[str] = STATUSES
) -> list[dict]:
    statuses = list(statuses)
    marks = ",".join("?" * len(statuses))
    return list(
        db.query(
            f"""select corrections.*, notes.text as note, notes.author as note_author,
                   tau.action as original_action, tau.score as original_score,
                   leaf.score as branch_score, leaf.success as branch_success,
                   tasks.name as task, episodes.id as episode_id
                from corrections
                join notes on notes.id = corrections.note_id
                join nodes tau on tau.id = corrections.tau_node_id
                join nodes leaf on leaf.id = corrections.leaf_node_id
                join episodes on episodes.id = tau.episode_id
                join tasks on tasks.id = episodes.task_id
                where episodes.run_id = ? and corrections.status in ({marks})
                order by corrections.id""",
            [run_id, *statuses],
        )
    )
