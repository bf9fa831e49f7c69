"""The step tree (`nodes`): each step stores its own action and outcome, never the whole
prefix; a path is rebuilt with a recursive query over `parent_id`.

Readers return `Step` records. Callers wrap writes that belong together in
`store.db.transaction`, so a killed run loses at most one step.
"""

from __future__ import annotations

import sqlite_utils

from store.db import now
from store.records import Step, encode_json


def insert(
    db: sqlite_utils.Database,
    *,
    episode_id: int,
    parent_id: int | None,
    depth: int,
    action: str | None,
    observation: str,
    feedback: dict,
    score: float,
    done: bool,
    success: bool,
    tokens: int = 0,
    truncated_turns: int = 0,
    note_id: int | None = None,
    branch_depth: int = 0,
) -> int:
    """Store one step; return its id."""
    return db["nodes"].insert(
        {
            "episode_id": episode_id,
            "parent_id": parent_id,
            "depth": depth,
            "action": action,
            "observation": observation,
            "feedback": encode_json(feedback),
            "score": float(score),
            "done": int(bool(done)),
            "success": int(bool(success)),
            "tokens": tokens,
            "truncated_turns": truncated_turns,
            "note_id": note_id,
            "branch_depth": branch_depth,
            "created_at": now(),
        }
    ).last_pk


def add(db: sqlite_utils.Database, **values) -> Step:
    """Store one step (the keywords of `insert`) and return it as stored: text from outside
    that the store had to make valid (see `store.text`) comes back as it was kept, so what
    the caller goes on with is what a resumed run will read."""
    return get(db, insert(db, **values))


def get(db: sqlite_utils.Database, node_id: int) -> Step:
    return Step.from_row(db["nodes"].get(node_id))


PATH_SQL = """
with recursive path(id, parent_id, lvl) as (
    select id, parent_id, 0 from nodes where id = ?
    union all
    select nodes.id, nodes.parent_id, path.lvl + 1 from nodes join path on nodes.id = path.parent_id
)
select nodes.* from path join nodes on nodes.id = path.id order by path.lvl desc
"""


def path_to(db: sqlite_utils.Database, node_id: int) -> list[Step]:
    """The steps from the episode's root down to `node_id`, inclusive (a recursive query)."""
    return [Step.from_row(row) for row in db.query(PATH_SQL, [node_id])]


def children(db: sqlite_utils.Database, node_id: int) -> list[Step]:
    return [Step.from_row(row) for row in db["nodes"].rows_where("parent_id = ?", [node_id], order_by="id")]


def root_of(db: sqlite_utils.Database, episode_id: int) -> int:
    return db.execute(
        "select id from nodes where episode_id = ? and parent_id is null", [episode_id]
    ).fetchone()[0]


def original_leaf(db: sqlite_utils.Database, episode_id: int) -> Step:
    """The last step of an episode's original (non-branch) path."""
    row = db.execute(
        """select id from nodes where episode_id = ? and branch_depth = 0
           order by depth desc, id desc limit 1""",
        [episode_id],
    ).fetchone()
    return get(db, row[0])


def newest_id(db: sqlite_utils.Database, episode_id: int) -> int:
    """The id of the step an episode stored last."""
    return db.execute("select max(id) from nodes where episode_id = ?", [episode_id]).fetchone()[0]


def original_path(db: sqlite_utils.Database, episode_id: int) -> list[Step]:
    """An episode's original path, root first, as it stands (finished or not)."""
    return path_to(db, original_leaf(db, episode_id).id)


def run_of_node(db: sqlite_utils.Database, node_id: int) -> int | None:
    """The run of step `node_id`, or None when the store has no such step."""
    row = db.execute(
        "select episodes.run_id from nodes join episodes on episodes.id = nodes.episode_id where nodes.id = ?",
        [node_id],
    ).fetchone()
    return row[0] if row else None


def mark_backtrack_point(db: sqlite_utils.Database, node_id: int) -> None:
    """Mark the step that branches replace (the tree shows it with ⟲)."""
    db["nodes"].update(node_id, {"backtrack_point": 1})


def actions_taken(db: sqlite_utils.Database, episode_ids: list[int]) -> int:
    """Steps the episodes' original paths have stored (the root is not a step)."""
    if not episode_ids:
        return 0
    marks = ",".join("?" * len(episode_ids))
    return db.execute(
        f"""select count(*) from nodes where episode_id in ({marks})
            and parent_id is not null and branch_depth = 0""",
        list(episode_ids),
    ).fetchone()[0]


def branches_started(db: sqlite_utils.Database, episode_id: int) -> int:
    """Branches started in an episode: the first step of a branch carries its note."""
    return db.execute(
        "select count(*) from nodes where episode_id = ? and branch_depth > 0 and note_id is not null",
        [episode_id],
    ).fetchone()[0]


def unfinished_branch_ends(db: sqlite_utils.Database, run_id: int, branch_depth: int, *, purpose: str) -> list[Step]:
    """The last stored step of each branch at `branch_depth`, in the run's episodes of
    `purpose`, that has not ended (a resumed run)."""
    rows = db.query(
        """select nodes.* from nodes join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = ? and nodes.branch_depth = ? and nodes.done = 0
           and not exists (select 1 from nodes c where c.parent_id = nodes.id and c.branch_depth = ?)
           order by nodes.id""",
        [run_id, purpose, branch_depth, branch_depth],
    )
    return [Step.from_row(row) for row in rows]


def finished_branch_ends(
    db: sqlite_utils.Database, run_id: int, branch_depth: int, *, purpose: str
) -> list[tuple[Step, float]]:
    """(last step, its episode's score) for each branch at `branch_depth`, in the run's
    episodes of `purpose`, that ended."""
    rows = db.query(
        """select nodes.*, episodes.score as episode_score from nodes
           join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = ? and nodes.branch_depth = ? and nodes.done = 1
           order by nodes.id""",
        [run_id, purpose, branch_depth],
    )
    return [(Step.from_row(row), float(row["episode_score"] or 0.0)) for row in rows]
