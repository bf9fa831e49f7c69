"""What the curation screen shows around a correction: the task, the steps before tau,
and the outcomes of the original path (where its note was written) and of the corrected
branch (its leaf)."""

from __future__ import annotations

import sqlite_utils

from store.queries import loads
from store.steps import path_to


def outcome(db: sqlite_utils.Database, node_id: int) -> dict:
    """A step's outcome: depth, score, success, done and its feedback, decoded."""
    row = db.execute("select depth, score, success, done, feedback from nodes where id = ?", [node_id]).fetchone()
    if row is None:
        return {}
    return {"depth": row[0], "score": row[1], "success": bool(row[2]), "done": bool(row[3]),
            "feedback": loads(row[4], {}) or {}}


def correction_context(db: sqlite_utils.Database, correction_id: int) -> dict | None:
    """The task (name and the text the policy was given), the history before tau (steps
    with action and observation), the original outcome and the branch's; None when gone."""
    row = db.execute(
        """select c.tau_node_id, c.leaf_node_id, notes.node_id, t.name from corrections c
           join notes on notes.id = c.note_id join nodes tau on tau.id = c.tau_node_id
           join episodes e on e.id = tau.episode_id join tasks t on t.id = e.task_id where c.id = ?""",
        [correction_id],
    ).fetchone()
    if row is None:
        return None
    tau, leaf, noted, task = row
    before = path_to(db, tau)[:-1]  # root (the task) .. the step before tau
    return {
        "task": task,
        "task_text": before[0]["observation"] if before else "",
        "history": [{"depth": step["depth"], "action": step["action"] or "", "observation": step["observation"] or ""}
                    for step in before[1:]],
        "original": outcome(db, noted),
        "branch": outcome(db, leaf),
    }
