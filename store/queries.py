"""Reads and writes the rest of the project shares: runs, tasks, episodes, the node tree.

Plain functions over a `sqlite_utils.Database`; callers wrap writes that belong
together in `store.db.transaction` so a killed run loses at most one step.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from store.db import now


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return json.loads(text)


# -- runs ---------------------------------------------------------------------------


def create_run(
    db: sqlite_utils.Database,
    *,
    config: dict,
    stages: list[str],
    name: str = "",
    config_path: str = "",
    provenance: dict | None = None,
) -> int:
    run_id = db["runs"].insert(
        {
            "name": name,
            "config": dumps(config),
            "config_path": config_path,
            "stages": dumps(stages),
            "status": "running",
            "created_at": now(),
            "provenance": dumps(provenance or {}),
            "tokens_generated": 0,
            "wall_time": 0.0,
        }
    ).last_pk
    db["run_stages"].insert_all(
        {"run_id": run_id, "stage": stage, "position": index, "status": "pending"}
        for index, stage in enumerate(stages)
    )
    return run_id


def get_run(db: sqlite_utils.Database, run_id: int) -> dict:
    row = db["runs"].get(run_id)
    row["config"] = loads(row["config"], {})
    row["stages"] = loads(row["stages"], [])
    row["provenance"] = loads(row["provenance"], {})
    return row


def latest_unfinished_run(db: sqlite_utils.Database) -> int | None:
    row = db.execute(
        "select id from runs where status != 'finished' order by id desc limit 1"
    ).fetchone()
    return row[0] if row else None


def latest_run(db: sqlite_utils.Database) -> int | None:
    row = db.execute("select id from runs order by id desc limit 1").fetchone()
    return row[0] if row else None


def set_run_status(db: sqlite_utils.Database, run_id: int, status: str, error: str = "") -> None:
    values: dict[str, Any] = {"status": status, "error": error}
    if status == "finished":
        values["finished_at"] = now()
    db["runs"].update(run_id, values)


def add_run_usage(db: sqlite_utils.Database, run_id: int, *, tokens: int = 0, seconds: float = 0.0) -> None:
    db.execute(
        "update runs set tokens_generated = tokens_generated + ?, wall_time = wall_time + ? where id = ?",
        [tokens, seconds, run_id],
    )


def stage_rows(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    return list(db["run_stages"].rows_where("run_id = ?", [run_id], order_by="position"))


def set_stage_status(
    db: sqlite_utils.Database, run_id: int, position: int, status: str, summary: dict | None = None
) -> None:
    values: dict[str, Any] = {"status": status}
    if status == "running":
        values["started_at"] = now()
    if status == "finished":
        values["finished_at"] = now()
        values["summary"] = dumps(summary or {})
    db["run_stages"].update((run_id, position), values)


# -- tasks --------------------------------------------------------------------------


def ensure_task(db: sqlite_utils.Database, env: str, name: str, spec: dict) -> int:
    row = db.execute("select id from tasks where env = ? and name = ?", [env, name]).fetchone()
    if row:
        return row[0]
    return db["tasks"].insert({"env": env, "name": name, "spec": dumps(spec)}).last_pk


def task_name(db: sqlite_utils.Database, task_id: int) -> str:
    return db.execute("select name from tasks where id = ?", [task_id]).fetchone()[0]


# -- episodes and nodes -------------------------------------------------------------


def create_episode(
    db: sqlite_utils.Database,
    *,
    run_id: int,
    task_id: int,
    purpose: str,
    rollout: int,
    policy: str = "base",
    seed: int = 0,
    observation: str,
) -> tuple[int, int]:
    """Create an episode and its root node (the reset observation); return both ids."""
    episode_id = db["episodes"].insert(
        {
            "run_id": run_id,
            "task_id": task_id,
            "policy": policy,
            "purpose": purpose,
            "rollout": rollout,
            "seed": seed,
            "status": "running",
            "created_at": now(),
        }
    ).last_pk
    root_id = insert_node(
        db, episode_id=episode_id, parent_id=None, depth=0, action=None,
        observation=observation, feedback={}, score=0.0, done=False, success=False,
    )
    return episode_id, root_id


def insert_node(
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
    return db["nodes"].insert(
        {
            "episode_id": episode_id,
            "parent_id": parent_id,
            "depth": depth,
            "action": action,
            "observation": observation,
            "feedback": dumps(feedback),
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


def finish_episode(db: sqlite_utils.Database, episode_id: int) -> None:
    """Close an episode: its outcome is the best leaf in its tree (original path or branch)."""
    original = db.execute(
        """select max(depth), max(score), max(success) from nodes
           where episode_id = ? and branch_depth = 0 and parent_id is not null""",
        [episode_id],
    ).fetchone()
    steps, score, success = original if original and original[0] is not None else (0, 0.0, 0)
    db["episodes"].update(
        episode_id, {"status": "finished", "steps": steps, "score": score or 0.0, "success": success or 0}
    )


def node(db: sqlite_utils.Database, node_id: int) -> dict:
    row = db["nodes"].get(node_id)
    row["feedback"] = loads(row["feedback"], {})
    return row


PATH_SQL = """
with recursive path(id, parent_id, lvl) as (
    select id, parent_id, 0 from nodes where id = ?
    union all
    select nodes.id, nodes.parent_id, path.lvl + 1 from nodes join path on nodes.id = path.parent_id
)
select nodes.* from path join nodes on nodes.id = path.id order by path.lvl desc
"""


def path_to(db: sqlite_utils.Database, node_id: int) -> list[dict]:
    """The nodes from the episode's root down to `node_id`, inclusive (a recursive query)."""
    rows = list(db.query(PATH_SQL, [node_id]))
    for row in rows:
        row["feedback"] = loads(row["feedback"], {})
    return rows


def children(db: sqlite_utils.Database, node_id: int) -> list[dict]:
    rows = list(db["nodes"].rows_where("parent_id = ?", [node_id], order_by="id"))
    for row in rows:
        row["feedback"] = loads(row["feedback"], {})
    return rows


def root_of(db: sqlite_utils.Database, episode_id: int) -> int:
    return db.execute(
        "select id from nodes where episode_id = ? and parent_id is null", [episode_id]
    ).fetchone()[0]


def leaf_of_original_path(db: sqlite_utils.Database, episode_id: int) -> dict:
    """The last step of an episode's original (non-branch) path."""
    row = db.execute(
        """select id from nodes where episode_id = ? and branch_depth = 0
           order by depth desc, id desc limit 1""",
        [episode_id],
    ).fetchone()
    return node(db, row[0])


def actions_per_task(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    """How many actions the run has stored for each task name (the scripted backend's count)."""
    rows = db.execute(
        """select tasks.name, count(nodes.id) from nodes
           join episodes on episodes.id = nodes.episode_id
           join tasks on tasks.id = episodes.task_id
           where episodes.run_id = ? and nodes.action is not null
           group by tasks.name""",
        [run_id],
    ).fetchall()
    return {name: count for name, count in rows}


def run_counts(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    """Counts a user (and the crash-safety test) compares between runs."""
    def count(sql: str) -> int:
        return db.execute(sql, [run_id]).fetchone()[0]

    return {
        "episodes": count("select count(*) from episodes where run_id = ?"),
        "nodes": count(
            "select count(*) from nodes join episodes on episodes.id = nodes.episode_id where run_id = ?"
        ),
        "notes": count(
            """select count(*) from notes join nodes on nodes.id = notes.node_id
               join episodes on episodes.id = nodes.episode_id where run_id = ?"""
        ),
        "corrections": count(
            """select count(*) from corrections join nodes on nodes.id = corrections.leaf_node_id
               join episodes on episodes.id = nodes.episode_id where run_id = ?"""
        ),
    }
