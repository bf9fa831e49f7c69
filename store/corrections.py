"""Corrections: a branch that did better than the step it replaced (tau), with its note.

Proposed here by the backtrack stage; decided in `store.curation`; read here by the curate
stage and the export. What a correction trains on (`trained_actions`) is settled here
once, so the leakage check reads the same actions wherever it runs.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

from store import queries, steps
from store.db import now
from store.errors import LeafeError
from store.leakage import DEFAULT_LEAKAGE_WORDS
from store.records import Correction

STATUSES = ("proposed", "approved", "edited", "rejected")
TRAINABLE = ("approved", "edited")

# A correction with its note's text, its task and its run; the tau step's episode is the
# branch's, so the joins go through tau.
WITH_NOTE = """select corrections.*, notes.text as note, tasks.name as task, episodes.run_id as run_id,
        leaf.success as branch_success, leaf.score as branch_score, episodes.score as episode_score
    from corrections
    join notes on notes.id = corrections.note_id
    join nodes tau on tau.id = corrections.tau_node_id
    join nodes leaf on leaf.id = corrections.leaf_node_id
    join episodes on episodes.id = tau.episode_id
    join tasks on tasks.id = episodes.task_id"""


def propose(db: sqlite_utils.Database, *, note_id: int, tau_node_id: int, leaf_node_id: int) -> int | None:
    """Record the branch ending at `leaf_node_id` as a proposed correction of `tau_node_id`;
    its id, or None when that branch is a correction already (a resumed stage)."""
    if db.execute("select 1 from corrections where leaf_node_id = ?", [leaf_node_id]).fetchone():
        return None
    return db["corrections"].insert(
        {
            "note_id": note_id,
            "tau_node_id": tau_node_id,
            "leaf_node_id": leaf_node_id,
            "status": "proposed",
            "created_at": now(),
        }
    ).last_pk


def get(db: sqlite_utils.Database, correction_id: int) -> Correction:
    """A correction with its note's text, task and run."""
    rows = list(db.query(f"{WITH_NOTE} where corrections.id = ?", [correction_id]))
    if not rows:
        raise LeafeError(f"no correction {correction_id}")
    return Correction.from_row(rows[0])


def of_run(db: sqlite_utils.Database, run_id: int, statuses: Iterable[str] = STATUSES) -> list[Correction]:
    """A run's corrections with one of `statuses`, oldest first."""
    statuses = list(statuses)
    marks = ",".join("?" * len(statuses))
    rows = db.query(
        f"{WITH_NOTE} where episodes.run_id = ? and corrections.status in ({marks}) order by corrections.id",
        [run_id, *statuses],
    )
    return [Correction.from_row(row) for row in rows]


def awaiting_curation(db: sqlite_utils.Database, run_id: int) -> list[Correction]:
    """Proposed corrections nobody has decided on yet (a person's "leave it proposed" counts
    as a decision and is kept)."""
    return [c for c in of_run(db, run_id, ("proposed",)) if c.decided_by is None]


def trainable(db: sqlite_utils.Database, run_id: int) -> list[Correction]:
    """Approved and edited corrections: what the export writes."""
    return of_run(db, run_id, TRAINABLE)


def count_of_run(db: sqlite_utils.Database, run_id: int) -> int:
    return db.execute(
        """select count(*) from corrections join nodes on nodes.id = corrections.leaf_node_id
           join episodes on episodes.id = nodes.episode_id where episodes.run_id = ?""",
        [run_id],
    ).fetchone()[0]


def branch_actions(db: sqlite_utils.Database, tau_node_id: int, leaf_node_id: int) -> list[str]:
    """The corrected action and its continuation: the branch's steps from tau's depth on."""
    tau_depth = steps.get(db, tau_node_id).depth
    return [step.action or "" for step in steps.path_to(db, leaf_node_id)[tau_depth:]]


def trained_actions(db: sqlite_utils.Database, correction: Correction, status: str) -> list[str]:
    """The assistant turns the export writes for `correction` once it has `status`: the
    edited action alone when edited (with its continuation when the edit was played from
    tau), else the branch's actions from tau on."""
    actions = branch_actions(db, correction.tau_node_id, correction.leaf_node_id)
    edited = correction.edited_action or ""
    if status == "edited" and edited.strip():
        # An edit played from tau has its own continuation (its branch starts with it).
        return actions if actions[:1] == [edited] else [edited]
    return actions


def leakage_words_of_run(db: sqlite_utils.Database, run_id: int) -> int:
    """The run's `curate.leakage_words` (the default for a config that predates it)."""
    config = queries.get_run(db, run_id)["config"]
    return int((config.get("curate") or {}).get("leakage_words") or DEFAULT_LEAKAGE_WORDS)
