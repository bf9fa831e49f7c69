"""Stage 4, curate: decide which corrections become training data.

`auto` approves successful corrections that pass the leakage check and leaves the rest
proposed; with `min_gain` set it also approves a branch that did not succeed but whose
score beat its original path's by at least that much (in navigation, a branch that got
much closer to the goal), recording the gain as the reason. `human` leaves all of them
proposed for the TUI. Either way a correction whose actions copy a run of
`leakage_words` or more words from its note is rejected, with the reason recorded: a
model trained on it would learn to expect the note.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from store import corrections, steps
from store.curation import decide, record_decision
from store.db import open_store, transaction
from store.leakage import copied_run, leakage_reason
from store.records import Correction
from workbench.context import Progress, StageContext

__all__ = ["EditPreview", "copied_run", "gain_reason", "keep_edit", "leakage", "preview_edit", "run_curate"]

# Scores are floats: 0.7 - 0.4 falls a hair short of 0.3, which a person would call a gain of 0.3.
GAIN_TOLERANCE = 1e-9


def leakage(db: sqlite_utils.Database, correction: Correction, note: str, length: int) -> str | None:
    """Why a proposed correction leaks its note: the branch's actions (what approving it
    trains on) and any edited action a person left are all checked."""
    actions = (corrections.trained_actions(db, correction, "approved")
               + corrections.trained_actions(db, correction, "edited"))
    return leakage_reason(note, actions, length)


def gain_reason(branch_score: float | None, original_score: float | None, min_gain: float | None) -> str | None:
    """Why a branch that did not succeed is approved anyway: its score beat the original
    path's by at least `min_gain`. None when `min_gain` is unset or the gain is smaller."""
    if min_gain is None or branch_score is None:
        return None
    original = original_score or 0.0
    gain = branch_score - original
    if gain + GAIN_TOLERANCE < min_gain:
        return None
    return (f"score {branch_score:.3g} beat the original path's {original:.3g} by {gain:.3g} "
            f"(curate.min_gain = {min_gain:g})")


def run_curate(context: StageContext) -> dict:
    config = context.config.curate
    counts = {"approved": 0, "rejected": 0, "proposed": 0}
    with transaction(context.db):
        for row in corrections.awaiting_curation(context.db, context.run_id):
            reason = leakage(context.db, row, row.note, config.leakage_words)
            if reason:
                record_decision(context.db, row.id, "rejected", reviewer=config.reviewer, reason=reason)
                counts["rejected"] += 1
            elif config.policy == "auto" and row.branch_success:
                record_decision(context.db, row.id, "approved", reviewer=config.reviewer)
                counts["approved"] += 1
            elif config.policy == "auto" and (
                gain := gain_reason(row.branch_score, row.episode_score, config.min_gain)
            ):
                record_decision(context.db, row.id, "approved", reviewer=config.reviewer, reason=gain)
                counts["approved"] += 1
                counts["approved_for_gain"] = counts.get("approved_for_gain", 0) + 1
            else:
                counts["proposed"] += 1
    return counts


# -- an edit, run before it is kept (the curation screen's `e`) ----------------------------


@dataclass(frozen=True)
class EditPreview:
    """What the edited action did when played in place of the correction's step at tau."""

    action: str  # as it will be stored (cleaned like any action)
    observation: str
    feedback: dict
    score: float
    done: bool
    success: bool


def correction_steps(db_path: str, correction_id: int) -> tuple[int, int, str]:
    """(tau's step, the correction's note id, the note's text): one clear line when gone."""
    db = open_store(db_path)
    try:
        correction = corrections.get(db, correction_id)
    finally:
        db.close()
    return correction.tau_node_id, correction.note_id, correction.note


def preview_edit(db_path: str, correction_id: int, action_text: str) -> EditPreview:
    """Play `action_text` from the state at tau (restored as for a branch) and report what
    the environment answered; nothing is stored."""
    from workbench.backtrack import run_of_step, try_action

    tau, _, _ = correction_steps(db_path, correction_id)
    with StageContext.for_run(db_path, run_of_step(db_path, tau)) as context:
        text, result, success = try_action(context, tau, action_text)
    return EditPreview(text, result.observation, dict(result.feedback), float(result.score), bool(result.done),
                       bool(success))


def keep_edit(
    db_path: str,
    correction_id: int,
    action_text: str,
    *,
    reviewer: str,
    progress: Progress | None = None,
    cancel=None,
) -> str:
    """Keep an edited action: it is played from tau with the correction's note in the
    policy's context, the policy continues to the end of the budget (as branch by hand
    does), and the correction becomes `edited` with that branch as its continuation, so the
    exported continuation answers the edited action. Returns the status recorded (a
    rejection when the edit copies the note)."""
    from workbench.backtrack import branch_from, run_of_step

    tau, note_id, note = correction_steps(db_path, correction_id)
    with StageContext.for_run(db_path, run_of_step(db_path, tau), progress=progress, cancel=cancel) as context:
        new_ids = branch_from(context, tau, action_text, (note_id, note))
        first = steps.get(context.db, new_ids[0]).action
        return decide(context.db, correction_id, "edited", reviewer=reviewer, edited_action=first,
                      leaf_node_id=new_ids[-1])
