"""What the episode tree needs to find what matters, and what tells the screens that
another program wrote to the store.

`episodes` lists a run's episodes with their marks (corrections, backtrack points,
branches, deepest branch, score gain of the best branch) so a filter or a sort is one
query. `StoreChanges` answers "did anyone commit since I last looked?" with SQLite's
`PRAGMA data_version` on a connection of its own: a few microseconds, no table read, and
never a wait (a busy store reads as "no change yet").
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from store.views import EPISODE_PAGE


@dataclass(frozen=True)
class EpisodeFilter:
    """Which episodes of a run the tree shows, and in which order."""

    task: str = ""  # the task's name contains this
    outcome: str = ""  # passed | failed | running
    text: str = ""  # a step or a note contains this
    mark: str = ""  # correction | backtrack: has a step with a correction / a backtrack point
    min_branch_depth: int = 0  # has a branch at least this deep
    note_author: str = ""  # has a note by this author (template | model | human ...)
    sort: str = "id"  # id | gain (best branch's score minus the original's, largest first)

    def narrows(self) -> bool:
        return bool(self.task or self.outcome or self.text or self.mark or self.min_branch_depth
                    or self.note_author)


EPISODE_ROW = """select e.id, e.run_id, e.task_id, t.name as task, e.policy, e.purpose, e.rollout,
    e.status, e.success, e.score,
    -- a running episode's steps are the ones already stored on its original path
    case when e.status = 'finished' then e.steps else
        (select coalesce(max(n.depth), 0) from nodes n where n.episode_id = e.id and n.branch_depth = 0)
    end as steps,
    (select id from nodes where episode_id = e.id and parent_id is null) as root_id,
    (select count(*) from corrections c where c.tau_node_id in
        (select id from nodes where episode_id = e.id)) as n_corrections,
    (select count(*) from nodes b join nodes p on p.id = b.parent_id
        where b.episode_id = e.id and b.branch_depth > p.branch_depth) as n_branches,
    (select count(*) from nodes n where n.episode_id = e.id and n.backtrack_point = 1) as n_backtracks,
    (select coalesce(max(n.branch_depth), 0) from nodes n where n.episode_id = e.id) as max_branch_depth,
    coalesce((select max(n.score) from nodes n where n.episode_id = e.id and n.branch_depth > 0)
             - e.score, 0.0) as gain
  from episodes e join tasks t on t.id = e.task_id"""


def episodes(
    db: sqlite_utils.Database, run_id: int, where: EpisodeFilter = EpisodeFilter(), *,
    limit: int = EPISODE_PAGE, offset: int = 0,
) -> list[dict]:
    """A page of a run's episodes that pass the filter, each with its marks and gain."""
    conditions, params = [], []
    if where.task:
        conditions.append("task like ?")
        params.append(f"%{where.task}%")
    if where.outcome == "passed":
        conditions.append("success = 1")
    elif where.outcome == "failed":
        conditions.append("status = 'finished' and success = 0")
    elif where.outcome == "running":
        conditions.append("status != 'finished'")
    if where.text:
        conditions.append(
            """id in (select n.episode_id from nodes n where n.action like ? or n.observation like ?
                      union select n.episode_id from notes join nodes n on n.id = notes.node_id
                      where notes.text like ?)""")
        params += [f"%{where.text}%"] * 3
    if where.mark == "correction":
        conditions.append("n_corrections > 0")
    elif where.mark == "backtrack":
        conditions.append("n_backtracks > 0")
    if where.min_branch_depth:
        conditions.append("max_branch_depth >= ?")
        params.append(where.min_branch_depth)
    if where.note_author:
        conditions.append("""id in (select n.episode_id from notes join nodes n on n.id = notes.node_id
                                    where notes.author = ?)""")
        params.append(where.note_author)
    filtered = " and ".join(conditions) or "1"
    order = "gain desc, id" if where.sort == "gain" else "id"
    return list(db.query(
        f"select * from ({EPISODE_ROW} where e.run_id = ?) where {filtered} order by {order} limit ? offset ?",
        [run_id, *params, limit, offset],
    ))


def episode(db: sqlite_utils.Database, episode_id: int) -> dict | None:
    rows = list(db.query(f"{EPISODE_ROW} where e.id = ?", [episode_id]))
    return rows[0] if rows else None


def note_authors(db: sqlite_utils.Database, run_id: int) -> list[str]:
    """Who wrote the notes of a run, for the author filter."""
    return [row[0] for row in db.execute(
        """select distinct notes.author from notes join nodes n on n.id = notes.node_id
           join episodes e on e.id = n.episode_id where e.run_id = ? and notes.author is not null
           order by notes.author""", [run_id]).fetchall()]


def marked_steps(db: sqlite_utils.Database, episode_ids: list[int], mark: str) -> list[tuple[int, int]]:
    """Steps of these episodes with a correction (`correction`, ★) or that were rolled back
    to (`backtrack`, ⟲), as (episode id, step id), in the episodes' order, then in the
    order the steps were stored."""
    if not episode_ids:
        return []
    condition = ("n.backtrack_point = 1" if mark == "backtrack"
                 else "exists (select 1 from corrections c where c.tau_node_id = n.id)")
    marks = ",".join("?" * len(episode_ids))
    rows = db.execute(
        f"select n.episode_id, n.id from nodes n where n.episode_id in ({marks}) and {condition}",
        episode_ids).fetchall()
    position = {episode_id: index for index, episode_id in enumerate(episode_ids)}
    return sorted(((episode_id, node_id) for episode_id, node_id in rows),
                  key=lambda row: (position[row[0]], row[1]))


def nodes_after(db: sqlite_utils.Database, run_id: int, after_id: int, *, limit: int = 500) -> list[int]:
    """Steps of a run stored after node `after_id` (not the episodes' roots), oldest first."""
    return [row[0] for row in db.execute(
        """select n.id from nodes n join episodes e on e.id = n.episode_id
           where e.run_id = ? and n.id > ? and n.parent_id is not null order by n.id limit ?""",
        [run_id, after_id, limit]).fetchall()]


def last_node_id(db: sqlite_utils.Database) -> int:
    return db.execute("select coalesce(max(id), 0) from nodes").fetchone()[0]


def running_run(db: sqlite_utils.Database) -> int | None:
    """The newest run still marked running: the live run, wherever it was started."""
    row = db.execute("select id from runs where status = 'running' order by id desc limit 1").fetchone()
    return row[0] if row else None


class StoreChanges:
    """Whether another connection committed to the store since the last question.

    Its own connection: `data_version` changes only for other connections' commits, and the
    screens read and write through theirs. The lock lets a poll in a worker thread and a
    close on the interface's thread meet safely.
    """

    def __init__(self, path: str | Path) -> None:
        # timeout 0: a store another program holds is "unchanged for now", never a wait.
        self.connection = sqlite3.connect(str(path), timeout=0, check_same_thread=False)
        self.lock = threading.Lock()
        self.version = self.read_version()

    def read_version(self) -> int | None:
        try:
            return self.connection.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None

    def changed(self) -> bool:
        with self.lock:
            if self.connection is None:
                return False
            version = self.read_version()
            if version is None or version == self.version:
                return False
            self.version = version
            return True

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                self.connection.close()
                self.connection = None  # type: ignore[assignment]
