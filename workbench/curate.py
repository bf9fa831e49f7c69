"""Stage 4, curate: decide which corrections become training data.

`auto` approves successful corrections that pass the leakage check and leaves the rest
proposed; `human` leaves all of them proposed for the TUI. Either way a correction whose
actions copy a run of `leakage_words` or more words from its note is rejected, with the
reason recorded: a model trained on it would learn to expect the note.
"""

from __future__ import annotations

from store.curation import record_decision
from store.db import transaction
from workbench.context import StageContext
from workbench.leakage import copied_run, leakage_reason, trained_actions

__all__ = ["copied_run", "leakage", "run_curate"]


def leakage(db, correction: dict, note: str, length: int) -> str | None:
    """Why a proposed correction leaks its note: the branch's actions (what approving it
    trains on) and any edited action a person left are all checked."""
    actions = trained_actions(db, correction, "approved") + trained_actions(db, correction, "edited")
    return leakage_reason(note, actions, length)


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
