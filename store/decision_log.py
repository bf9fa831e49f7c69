"""The audit trail of curation: every decision stays recorded, an undo included.

An undo is a decision of its own: it restores the status (and edited action) the undone
decision replaced and names it in `undoes`. Pressing undo again steps further back, over
decisions already undone, so several decisions can be undone in turn and each
correction's history reads as it happened.
"""

from __future__ import annotations

import sqlite_utils

from store.db import now, transaction

UNDO = "undo"
"""How the history names a decision that undid another."""


def latest_undoable(db: sqlite_utils.Database, reviewer: str | None) -> dict | None:
    """The newest decision (by `reviewer`, if given) that is not an undo and not undone yet."""
    where, params = ("and reviewer = ?", [reviewer]) if reviewer else ("", [])
    rows = list(db.query(
        f"""select * from decisions d where d.undoes is null
            and not exists (select 1 from decisions u where u.undoes = d.id) {where}
            order by d.id desc limit 1""",
        params,
    ))
    return rows[0] if rows else None


def undo_latest(db: sqlite_utils.Database, *, reviewer: str | None = None) -> int | None:
    """Undo the newest decision not yet undone (by `reviewer`, if given), recording the
    undo as a decision; returns the correction's id, or None when nothing is left."""
    with transaction(db):
        decision = latest_undoable(db, reviewer)
        if decision is None:
            return None
        correction_id = decision["correction_id"]
        current = db.execute("select status, edited_action from corrections where id = ?",
                             [correction_id]).fetchone()
        stamp = now()
        db["decisions"].insert({
            "correction_id": correction_id,
            "previous_status": current[0],
            "previous_edited_action": current[1],
            "status": decision["previous_status"],
            "edited_action": decision["previous_edited_action"],
            "reviewer": reviewer or "",
            "decided_at": stamp,
            "reason": f"undid decision {decision['id']}",
            "undoes": decision["id"],
            "leaf_node_id": decision.get("previous_leaf_node_id"),
            "previous_leaf_node_id": decision.get("leaf_node_id") if decision.get("previous_leaf_node_id") else None,
        })
        # The reason shown with the correction is the one of the decision now in force.
        earlier = db.execute(
            """select reason from decisions where correction_id = ? and id < ? and undoes is null
               and not exists (select 1 from decisions u where u.undoes = decisions.id)
               order by id desc limit 1""",
            [correction_id, decision["id"]],
        ).fetchone()
        changes = {
            "status": decision["previous_status"], "edited_action": decision["previous_edited_action"],
            "decided_by": reviewer or "", "decided_at": stamp,
            "reason": (earlier[0] or "") if earlier else "",
        }
        if decision.get("previous_leaf_node_id") is not None:
            # An edit that was played from tau: its continuation goes, the earlier one returns.
            changes["leaf_node_id"] = decision["previous_leaf_node_id"]
        db["corrections"].update(correction_id, changes)
    return correction_id


def history(db: sqlite_utils.Database, correction_id: int) -> list[dict]:
    """Every decision on a correction, oldest first: when, who, from which status to which,
    why, and whether it was an undo (`undoes`) or has been undone (`undone_by`)."""
    return list(db.query(
        """select d.id, d.decided_at, d.reviewer, d.previous_status, d.status, d.edited_action,
                  coalesce(d.reason, '') as reason, d.undoes,
                  (select u.id from decisions u where u.undoes = d.id) as undone_by
           from decisions d where d.correction_id = ? order by d.id""",
        [correction_id],
    ))
