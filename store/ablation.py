"""The no-note control's records: LEAFE's first-level notes and how many branches each got,
the control's own episodes (one per note: a copy of the history before the rollback point,
then its branches without the note), and what both sides' branches ended with.

A control episode has purpose `ablation:no_note` and `rollout` = the note's id (one per
note); its copied history has branch_depth 0 and its branches branch_depth 1, so only the
branches count as environment steps.
"""

from __future__ import annotations

import sqlite_utils

from store.db import transaction
from store.episodes import create as create_episode
from store.queries import loads
from store.steps import insert as insert_node

PURPOSE = "ablation:no_note"


def first_level_notes(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    """Notes on LEAFE's original paths that backtracking branched from, with the number of
    branches each got (`branches`) and the original episode's score."""
    return list(db.query(
        """select notes.id, notes.text, notes.rollback_node_id, nodes.episode_id,
                  episodes.score as episode_score,
                  (select count(*) from nodes b where b.note_id = notes.id and b.branch_depth = 1) as branches
           from notes join nodes on nodes.id = notes.node_id
           join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = 'explore' and nodes.branch_depth = 0
             and exists (select 1 from nodes b where b.note_id = notes.id and b.branch_depth = 1)
           order by notes.id""",
        [run_id],
    ))


def control_episode(db: sqlite_utils.Database, run_id: int, note_id: int) -> int | None:
    row = db.execute(
        "select id from episodes where run_id = ? and purpose = ? and rollout = ?", [run_id, PURPOSE, note_id]
    ).fetchone()
    return row[0] if row else None


def has_branches(db: sqlite_utils.Database, episode_id: int) -> bool:
    return db.execute(
        "select 1 from nodes where episode_id = ? and branch_depth > 0 limit 1", [episode_id]
    ).fetchone() is not None


def copy_history(db: sqlite_utils.Database, run_id: int, note: dict, history: list[dict]) -> int:
    """The control episode for `note`: its root and the steps before the rollback point,
    copied from LEAFE's episode (not played again); return the id of its last node."""
    source = db["episodes"].get(note["episode_id"])
    with transaction(db):
        episode_id, parent = create_episode(
            db, run_id=run_id, task_id=source["task_id"], purpose=PURPOSE, rollout=note["id"],
            policy=source["policy"], seed=source["seed"], observation=history[0]["observation"],
        )
        for step in history[1:]:
            parent = insert_node(
                db, episode_id=episode_id, parent_id=parent, depth=step["depth"], action=step["action"],
                observation=step["observation"], feedback={**(step.get("feedback") or {}), "copied_from": step["id"]},
                score=step["score"], done=False, success=False,
            )
    return parent


def unfinished_branch_nodes(db: sqlite_utils.Database, run_id: int) -> list[tuple[int, int]]:
    """(node id, episode id) of control branches whose last stored step is not the end."""
    return db.execute(
        """select nodes.id, nodes.episode_id from nodes join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = ? and nodes.branch_depth = 1 and nodes.done = 0
           and not exists (select 1 from nodes c where c.parent_id = nodes.id and c.branch_depth = 1)""",
        [run_id, PURPOSE],
    ).fetchall()


def finish_controls(db: sqlite_utils.Database, run_id: int) -> None:
    with transaction(db):
        db.execute("update episodes set status = 'finished' where run_id = ? and purpose = ?", [run_id, PURPOSE])


def control_leaves(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    """Each finished control branch: its note (the episode's rollout), score and success."""
    return list(db.query(
        """select episodes.rollout as note_id, nodes.score, nodes.success from nodes
           join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = ? and nodes.branch_depth = 1 and nodes.done = 1
           order by nodes.id""",
        [run_id, PURPOSE],
    ))


def leafe_leaves(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    """LEAFE's finished first-level branch ends (their note is found on their path)."""
    return list(db.query(
        """select nodes.id, nodes.score, nodes.success from nodes join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = 'explore' and nodes.branch_depth = 1
           and nodes.done = 1 order by nodes.id""",
        [run_id],
    ))


def correction_counts(db: sqlite_utils.Database, run_id: int) -> tuple[int, int]:
    """(proposed, approved) corrections of the run: every one proposed, and those approved or edited."""
    proposed, approved = db.execute(
        """select count(*), coalesce(sum(corrections.status in ('approved', 'edited')), 0) from corrections
           join nodes on nodes.id = corrections.leaf_node_id join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ?""",
        [run_id],
    ).fetchone()
    return int(proposed), int(approved)


def stored_summary(db: sqlite_utils.Database, run_id: int) -> dict | None:
    """The ablation stage's summary of a run, if it ran (for the Results screen and the
    report). A seed run's stages are kept by its parent run under the seed."""
    from store.seeds import parent_of

    parent = parent_of(db, run_id)
    stages_run, seed = parent if parent else (run_id, None)
    row = db.execute(
        "select summary from run_stages where run_id = ? and stage = ? and seed is ? and status = 'finished'",
        [stages_run, PURPOSE, seed],
    ).fetchone()
    return loads(row[0], None) if row else None
