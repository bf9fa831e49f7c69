"""What a run did, counted from the store: the numbers a batch summary ends with."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils


@dataclass(frozen=True)
class RunActivity:
    """The LEAFE loop of one run in counts (explored episodes only, not evaluation's)."""

    episodes: int
    successes: int
    notes: int
    backtrack_points: int
    branches: int
    branches_succeeded: int
    corrections: dict[str, int]  # by status: proposed, approved, edited, rejected


def run_activity(db: sqlite_utils.Database, run_id: int) -> RunActivity:
    def count(sql: str) -> int:
        return db.execute(sql, [run_id]).fetchone()[0] or 0

    in_run = "join episodes e on e.id = n.episode_id where e.run_id = ?"
    corrections = dict.fromkeys(("proposed", "approved", "edited", "rejected"), 0)
    for status, number in db.execute(
        f"""select c.status, count(*) from corrections c join nodes n on n.id = c.leaf_node_id
            {in_run} group by c.status""",
        [run_id],
    ).fetchall():
        corrections[status] = number
    return RunActivity(
        episodes=count("select count(*) from episodes where run_id = ? and purpose = 'explore'"),
        successes=count("select sum(success) from episodes where run_id = ? and purpose = 'explore'"),
        notes=count(f"select count(*) from notes t join nodes n on n.id = t.node_id {in_run}"),
        backtrack_points=count(f"select count(*) from nodes n {in_run} and n.backtrack_point = 1"),
        # A branch's first step carries the note that was in context (backtrack.attempts_used).
        branches=count(f"select count(*) from nodes n {in_run} and n.branch_depth > 0 and n.note_id is not null"),
        branches_succeeded=count(f"select count(*) from nodes n {in_run} and n.branch_depth > 0 and n.success = 1"),
        corrections=corrections,
    )
