"""Episodes: one task played by one policy for one stage (explore, evaluate, a baseline),
identified by (run, purpose, task, rollout, policy), with the root of its step tree.

Readers return `Episode` records (with the task's name where it is joined in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlite_utils

from store import steps
from store.db import now
from store.records import Episode, decode_json

COLUMNS = "episodes.*, tasks.name as task"
FROM = "episodes join tasks on tasks.id = episodes.task_id"


def create(
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
    root_id = steps.insert(
        db, episode_id=episode_id, parent_id=None, depth=0, action=None,
        observation=observation, feedback={}, score=0.0, done=False, success=False,
    )
    return episode_id, root_id


def finish(db: sqlite_utils.Database, episode_id: int) -> None:
    """Close an episode: its outcome is that of its original path (the branches' outcomes
    are their corrections')."""
    original = db.execute(
        """select max(depth), max(score), max(success) from nodes
           where episode_id = ? and branch_depth = 0 and parent_id is not null""",
        [episode_id],
    ).fetchone()
    depth, score, success = original if original and original[0] is not None else (0, 0.0, 0)
    db["episodes"].update(
        episode_id, {"status": "finished", "steps": depth, "score": score or 0.0, "success": success or 0}
    )


def get(db: sqlite_utils.Database, episode_id: int) -> Episode:
    (row,) = db.query(f"select {COLUMNS} from {FROM} where episodes.id = ?", [episode_id])
    return Episode.from_row(row)


def find(
    db: sqlite_utils.Database, *, run_id: int, purpose: str, task_id: int, rollout: int, policy: str
) -> int | None:
    """The id of the episode with this identity, if the run has it (a resumed stage)."""
    row = db.execute(
        """select id from episodes where run_id = ? and purpose = ? and task_id = ?
           and rollout = ? and policy = ?""",
        [run_id, purpose, task_id, rollout, policy],
    ).fetchone()
    return row[0] if row else None


def task_of(db: sqlite_utils.Database, episode_id: int) -> tuple[str, dict[str, Any]]:
    """(name, spec) of the task an episode plays."""
    name, spec = db.execute(
        "select tasks.name, tasks.spec from episodes join tasks on tasks.id = episodes.task_id "
        "where episodes.id = ?",
        [episode_id],
    ).fetchone()
    return name, decode_json(spec, {})


def of_run(
    db: sqlite_utils.Database,
    run_id: int,
    purpose: str,
    *,
    finished: bool | None = None,
    success: bool | None = None,
    from_rollout: int = 0,
) -> list[Episode]:
    """A run's episodes of one purpose, oldest first; `finished` and `success` filter when
    given, `from_rollout` keeps rollouts from that index on."""
    where, params = ["episodes.run_id = ?", "episodes.purpose = ?", "episodes.rollout >= ?"], [run_id, purpose, from_rollout]
    if finished is not None:
        where.append("episodes.status = 'finished'" if finished else "episodes.status != 'finished'")
    if success is not None:
        where.append("episodes.success = ?")
        params.append(int(success))
    rows = db.query(f"select {COLUMNS} from {FROM} where {' and '.join(where)} order by episodes.id", params)
    return [Episode.from_row(row) for row in rows]


def next_rollout(db: sqlite_utils.Database, run_id: int, purpose: str) -> int:
    """The first rollout index a run's episodes of `purpose` have not used."""
    row = db.execute(
        "select max(rollout) from episodes where run_id = ? and purpose = ?", [run_id, purpose]
    ).fetchone()
    return 0 if row[0] is None else row[0] + 1


def summary(db: sqlite_utils.Database, run_id: int, purpose: str) -> dict[str, int]:
    """How many episodes of `purpose` the run has, how many succeeded, their steps."""
    count, successes, taken = db.execute(
        """select count(*), coalesce(sum(success), 0), coalesce(sum(steps), 0) from episodes
           where run_id = ? and purpose = ?""",
        [run_id, purpose],
    ).fetchone()
    return {"episodes": count, "successes": successes, "steps": taken}


def count_running(db: sqlite_utils.Database, episode_ids: Sequence[int]) -> int:
    if not episode_ids:
        return 0
    marks = ",".join("?" * len(episode_ids))
    return db.execute(
        f"select count(*) from episodes where status = 'running' and id in ({marks})", list(episode_ids)
    ).fetchone()[0]


def outcomes_by_task(db: sqlite_utils.Database, episode_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(n, c) per task id over the given finished episodes: played, and succeeded."""
    if not episode_ids:
        return {}
    marks = ",".join("?" * len(episode_ids))
    rows = db.execute(
        f"""select task_id, count(*), coalesce(sum(success), 0) from episodes
            where id in ({marks}) and status = 'finished' group by task_id""",
        list(episode_ids),
    ).fetchall()
    return {task_id: (n, c) for task_id, n, c in rows}
