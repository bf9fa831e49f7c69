"""Curation decisions on corrections, and notes written by people.

Every decision is written at once, timestamped, with who made it and why, and kept in
`decisions`; an undo is a decision of its own (store/decision_log.py). Statuses form a closed set.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

from store import corrections, notes
from store.corrections import STATUSES, TRAINABLE
from store.db import now, transaction
from store.errors import LeafeError, LeakageError
from store.leakage import leakage_reason

__all__ = ["STATUSES", "TRAINABLE", "add_human_note", "corrections_of_run", "decide", "decide_many",
           "leakage_of", "proposed_queue", "record_decision", "set_correction_note", "undo_last"]


def decide(
    db: sqlite_utils.Database,
    correction_id: int,
    status: str,
    *,
    reviewer: str,
    edited_action: str | None = None,
    reason: str = "",
    leaf_node_id: int | None = None,
) -> str:
    """Set a correction's status (and edited action), remembering the previous one; return
    the status recorded. `leaf_node_id` names a new branch as the correction's continuation
    (an edit played from tau and continued by the policy).

    Approving, or saving an edited action, passes the leakage check first: a correction
    whose trained action copies `curate.leakage_words` consecutive words of its note is
    recorded as `rejected` with the reason (an edited text is kept for a later edit).
    """
    if status not in STATUSES:
        raise LeafeError(f"unknown correction status {status!r} (one of {', '.join(STATUSES)})")
    if status == "edited" and not (edited_action or "").strip():
        raise LeafeError("an edited correction needs the edited action")
    with transaction(db):
        if status in TRAINABLE:
            leak = leakage_of(db, correction_id, status, edited_action=edited_action, leaf_node_id=leaf_node_id)
            if leak:
                status, reason = "rejected", leak
        record_decision(db, correction_id, status, reviewer=reviewer, edited_action=edited_action, reason=reason,
                        leaf_node_id=leaf_node_id)
    return status


def leakage_of(
    db: sqlite_utils.Database,
    correction_id: int,
    status: str,
    *,
    edited_action: str | None = None,
    note: str | None = None,
    leaf_node_id: int | None = None,
) -> str | None:
    """Why `correction_id` with `status` (and a new edited action, continuation or note)
    would leak its note into training, or None."""
    correction = corrections.get(db, correction_id)
    if leaf_node_id is not None:
        correction = correction.replace(leaf_node_id=leaf_node_id)
    if edited_action is not None and status == "edited":
        correction = correction.replace(edited_action=edited_action)
    actions = corrections.trained_actions(db, correction, status)
    return leakage_reason(note if note is not None else correction.note, actions,
                          corrections.leakage_words_of_run(db, correction.run_id))


def record_decision(
    db: sqlite_utils.Database,
    correction_id: int,
    status: str,
    *,
    reviewer: str,
    edited_action: str | None = None,
    reason: str = "",
    leaf_node_id: int | None = None,
) -> None:
    """`decide` without its own transaction, for stages that batch many decisions."""
    row = db.execute(
        "select status, edited_action, leaf_node_id from corrections where id = ?", [correction_id]
    ).fetchone()
    if row is None:
        raise LeafeError(f"no correction {correction_id}")
    stamp = now()
    # An edit the leakage check turned into a rejection keeps its text for a later edit.
    keeps_text = status == "edited" or (status == "rejected" and edited_action is not None)
    new_edited = edited_action if keeps_text else row[1]
    db["decisions"].insert(
        {
            "correction_id": correction_id,
            "previous_status": row[0],
            "previous_edited_action": row[1],
            "status": status,
            "edited_action": new_edited,
            "reviewer": reviewer,
            "decided_at": stamp,
            "reason": reason,
            # A new continuation (an edit played from tau) and the one it replaced, for undo.
            "leaf_node_id": leaf_node_id,
            "previous_leaf_node_id": row[2] if leaf_node_id is not None else None,
        }
    )
    changes = {"status": status, "edited_action": new_edited, "decided_by": reviewer, "decided_at": stamp,
               "reason": reason}
    if leaf_node_id is not None:
        changes["leaf_node_id"] = leaf_node_id
    db["corrections"].update(correction_id, changes)


def decide_many(db: sqlite_utils.Database, correction_ids: Iterable[int], status: str, *, reviewer: str) -> int:
    """Approve or reject a selection in one transaction; returns how many changed."""
    ids = list(correction_ids)
    if status not in ("approved", "rejected"):
        raise LeafeError("a selection can only be approved or rejected at once")
    with transaction(db):
        for correction_id in ids:
            # As in `decide`: an approval that would leak the note is recorded as a rejection.
            leak = leakage_of(db, correction_id, status) if status == "approved" else None
            record_decision(db, correction_id, "rejected" if leak else status, reviewer=reviewer, reason=leak or "")
    return len(ids)


def undo_last(db: sqlite_utils.Database, *, reviewer: str | None = None) -> int | None:
    """Undo the newest decision not undone yet (by `reviewer`, if given), as a decision of
    its own (see store/decision_log.py); returns the correction's id."""
    from store.decision_log import undo_latest

    return undo_latest(db, reviewer=reviewer)


def add_human_note(
    db: sqlite_utils.Database, node_id: int, rollback_node_id: int, text: str, *, author: str = "human"
) -> int:
    """A note written by a person on a step; `rollback_node_id` is the step it says to redo."""
    if not text.strip():
        raise LeafeError("a note needs some text")
    with transaction(db):
        return notes.add(db, node_id=node_id, rollback_node_id=rollback_node_id, text=text.strip(), author=author)


def set_correction_note(db: sqlite_utils.Database, correction_id: int, text: str, *, reviewer: str) -> int:
    """Replace a correction's note by one a person wrote (author `human`); returns its id.

    Raises `LeakageError` (a `LeafeError`), saving nothing, when the correction's trained
    action copies `curate.leakage_words` consecutive words of the new note."""
    row = db.execute(
        """select notes.node_id, notes.rollback_node_id from corrections
           join notes on notes.id = corrections.note_id where corrections.id = ?""",
        [correction_id],
    ).fetchone()
    if row is None:
        raise LeafeError(f"no correction {correction_id}")
    status = db.execute("select status from corrections where id = ?", [correction_id]).fetchone()[0]
    if status != "rejected":
        # A note the correction's own action quotes would make it leak: refused, nothing saved.
        leak = leakage_of(db, correction_id, status, note=text)
        if leak:
            raise LeakageError(f"correction {correction_id}: {leak}; write the note in your own words")
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
