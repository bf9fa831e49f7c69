"""Stage 4, curate: decide which corrections become training data.

`auto` approves successful corrections that pass the leakage check and leaves the rest
proposed; `human` leaves all of them proposed for the TUI. Either way a correction whose
actions copy a run of `leakage_words` or more words from its note is rejected, with the
reason recorded: a model trained on it would learn to expect the note.
"""

from __future__ import annotations

import re

from store import queries
from store.curation import record_decision
from store.db import transaction
from workbench.context import StageContext

WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return [word.lower() for word in WORD.findall(text or "")]


def copied_run(note: str, action: str, length: int) -> str | None:
    """The first run of `length` consecutive note words that also appears in the action."""
    note_words, action_words = words(note), words(action)
    if len(note_words) < length or len(action_words) < length:
        return None
    action_runs = {tuple(action_words[i : i + length]) for i in range(len(action_words) - length + 1)}
    for i in range(len(note_words) - length + 1):
        run = tuple(note_words[i : i + length])
        if run in action_runs:
            return " ".join(run)
    return None


def correction_actions(db, correction: dict) -> list[str]:
    """The corrected action and its continuation: the branch's steps from tau's depth on."""
    tau_depth = db.execute("select depth from nodes where id = ?", [correction["tau_node_id"]]).fetchone()[0]
    path = queries.path_to(db, correction["leaf_node_id"])
    actions = [step["action"] or "" for step in path[tau_depth:]]
    if correction.get("edited_action"):
        actions = [correction["edited_action"]]
    return actions


def leakage(db, correction: dict, note: str, length: int) -> str | None:
    for action in correction_actions(db, correction):
        run = copied_run(note, action, length)
        if run:
            return f"leakage: the action copies {length}+ words of the note ('{run}')"
    return None


def run_curate(context: StageContext) -> dict:
    config = context.config.curate
    rows = list(
        context.db.query(
            """select corrections.*, notes.text as note, leaf.success as branch_success
               from corrections join notes on notes.id = corrections.note_id
               join nodes leaf on leaf.id = corrections.leaf_node_id
               join episodes on episodes.id = leaf.episode_id
               where episodes.run_id = ? and corrections.status = 'proposed'
               and corrections.decided_by is null order by corrections.id""",
            [context.run_id],
        )
    )
    counts = {"approved": 0, "rejected": 0, "proposed": 0}
    with transaction(context.db):
        for row in rows:
            reason = leakage(context.db, row, row["note"], config.leakage_words)
            if reason:
                record_decision(context.db, row["id"], "rejected", reviewer=config.reviewer, reason=reason)
                counts["rejected"] += 1
            elif config.policy == "auto" and row["branch_success"]:
                record_decision(context.db, row["id"], "approved", reviewer=config.reviewer)
                counts["approved"] += 1
            else:
                counts["proposed"] += 1
    return counts
