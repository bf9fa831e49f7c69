"""Read-only queries behind the TUI's screens, paged so a large store opens at once.

Each function returns plain dicts (or lists of them) and never writes; the screens
write through `store.curation` and `store.admin`. Queries that may touch many rows take
`limit` and `offset`, and the tree's children come one parent at a time.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from store.queries import loads

# How many children of one step a tree loads at once; the rest come on demand.
CHILD_PAGE = 200
EPISODE_PAGE = 500


# -- runs ---------------------------------------------------------------------------


def runs_overview(db: sqlite_utils.Database, *, limit: int = 200, offset: int = 0) -> list[dict]:
    """Runs, newest first, with stage statuses, episode counts, success rate and queue size."""
    rows = list(
        db.query(
            """select r.id, r.name, r.status, r.error, r.created_at, r.finished_at, r.stages,
                 (select count(*) from episodes e where e.run_id = r.id) as episodes,
                 (select count(*) from episodes e where e.run_id = r.id and e.status = 'finished')
                    as finished,
                 (select coalesce(sum(e.success), 0) from episodes e
                    where e.run_id = r.id and e.status = 'finished') as successes,
                 (select count(*) from corrections c join nodes n on n.id = c.tau_node_id
                    join episodes e on e.id = n.episode_id
                    where e.run_id = r.id and c.status = 'proposed') as proposed
               from runs r order by r.id desc limit ? offset ?""",
            [limit, offset],
        )
    )
    stages = stage_statuses(db, [row["id"] for row in rows])
    for row in rows:
        row["stages"] = stages.get(row["id"]) or [(name, "pending") for name in loads(row["stages"], [])]
        row["success_rate"] = row["successes"] / row["finished"] if row["finished"] else None
    return rows


def stage_statuses(db: sqlite_utils.Database, run_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    if not run_ids:
        return {}
    marks = ",".join("?" * len(run_ids))
    result: dict[int, list[tuple[str, str]]] = {}
    for run_id, stage, status in db.execute(
        f"select run_id, stage, status from run_stages where run_id in ({marks}) order by run_id, position",
        run_ids,
    ).fetchall():
        result.setdefault(run_id, []).append((stage, status))
    return result


def run_header(db: sqlite_utils.Database, run_id: int) -> dict | None:
    """What a screen's title shows about a run: its name, status, stages, env and model."""
    row = db.execute(
        "select id, name, status, stages, config, error from runs where id = ?", [run_id]
    ).fetchone()
    if row is None:
        return None
    config = loads(row[4], {})
    return {
        "id": row[0],
        "name": row[1] or f"run {row[0]}",
        "status": row[2],
        "stages": loads(row[3], []),
        "env": config.get("env", {}).get("kind", ""),
        "suite": config.get("env", {}).get("suite", ""),
        "model": config.get("model", {}).get("name", ""),
        "backend": config.get("model", {}).get("backend", ""),
        "error": row[5] or "",
    }


def run_config(db: sqlite_utils.Database, run_id: int) -> dict:
    row = db.execute("select config from runs where id = ?", [run_id]).fetchone()
    return loads(row[0], {}) if row else {}


def run_of_episode(db: sqlite_utils.Database, episode_id: int) -> int | None:
    row = db.execute("select run_id from episodes where id = ?", [episode_id]).fetchone()
    return row[0] if row else None


# -- episodes and the step tree ----------------------------------------------------


EPISODE_COLUMNS = """e.id, e.run_id, e.task_id, t.name as task, e.policy, e.purpose, e.rollout,
    e.status, e.success, e.score, e.steps,
    (select id from nodes where episode_id = e.id and parent_id is null) as root_id"""


def episodes_of_run(
    db: sqlite_utils.Database,
    run_id: int,
    *,
    task: str = "",
    outcome: str = "",
    text: str = "",
    limit: int = EPISODE_PAGE,
    offset: int = 0,
) -> list[dict]:
    """A page of a run's episodes; `task` matches the task name, `outcome` is
    passed | failed | running, `text` keeps episodes with a step or note containing it."""
    where, params = ["e.run_id = ?"], [run_id]
    if task:
        where.append("t.name like ?")
        params.append(f"%{task}%")
    if outcome == "passed":
        where.append("e.success = 1")
    elif outcome == "failed":
        where.append("e.status = 'finished' and e.success = 0")
    elif outcome == "running":
        where.append("e.status != 'finished'")
    if text:
        where.append(
            """e.id in (select n.episode_id from nodes n where n.action like ? or n.observation like ?
                        union select n.episode_id from notes join nodes n on n.id = notes.node_id
                        where notes.text like ?)"""
        )
        params += [f"%{text}%"] * 3
    return list(
        db.query(
            f"""select {EPISODE_COLUMNS} from episodes e join tasks t on t.id = e.task_id
                where {' and '.join(where)} order by e.id limit ? offset ?""",
            [*params, limit, offset],
        )
    )


def episode(db: sqlite_utils.Database, episode_id: int) -> dict | None:
    rows = list(
        db.query(
            f"select {EPISODE_COLUMNS} from episodes e join tasks t on t.id = e.task_id where e.id = ?",
            [episode_id],
        )
    )
    return rows[0] if rows else None


STEP_COLUMNS = """n.id, n.episode_id, n.parent_id, n.depth, substr(n.action, 1, 400) as action,
    n.score, n.done, n.success, n.backtrack_point, n.branch_depth, n.note_id,
    (select count(*) from nodes c where c.parent_id = n.id) as n_children,
    (select count(*) from notes where notes.node_id = n.id) as n_notes,
    (select count(*) from corrections where corrections.tau_node_id = n.id) as n_corrections"""


def step_children(
    db: sqlite_utils.Database, node_id: int, *, limit: int = CHILD_PAGE, offset: int = 0
) -> list[dict]:
    """A page of a step's children, each with how many children and notes it has."""
    return list(
        db.query(
            f"select {STEP_COLUMNS} from nodes n where n.parent_id = ? order by n.id limit ? offset ?",
            [node_id, limit, offset],
        )
    )


def step_row(db: sqlite_utils.Database, node_id: int) -> dict | None:
    rows = list(db.query(f"select {STEP_COLUMNS} from nodes n where n.id = ?", [node_id]))
    return rows[0] if rows else None


def child_count(db: sqlite_utils.Database, node_id: int) -> int:
    return db.execute("select count(*) from nodes where parent_id = ?", [node_id]).fetchone()[0]


def notes_on(db: sqlite_utils.Database, node_id: int) -> list[dict]:
    """Notes reflected on this step, oldest first."""
    return list(
        db.query(
            """select notes.*, target.depth as rollback_depth from notes
               left join nodes target on target.id = notes.rollback_node_id
               where notes.node_id = ? order by notes.id""",
            [node_id],
        )
    )


def note(db: sqlite_utils.Database, note_id: int) -> dict | None:
    rows = list(
        db.query(
            """select notes.*, target.depth as rollback_depth, src.depth as node_depth from notes
               left join nodes target on target.id = notes.rollback_node_id
               left join nodes src on src.id = notes.node_id where notes.id = ?""",
            [note_id],
        )
    )
    return rows[0] if rows else None


def step_detail(db: sqlite_utils.Database, node_id: int) -> dict | None:
    """Everything the detail pane shows about one step."""
    rows = list(
        db.query(
            """select n.*, t.name as task, e.run_id from nodes n
               join episodes e on e.id = n.episode_id join tasks t on t.id = e.task_id
               where n.id = ?""",
            [node_id],
        )
    )
    if not rows:
        return None
    row = rows[0]
    row["feedback"] = loads(row["feedback"], {})
    row["note_in_context"] = note(db, row["note_id"]) if row["note_id"] else None
    row["notes"] = notes_on(db, node_id)
    row["replaced_by_notes"] = list(
        db.query("select id, text, author from notes where rollback_node_id = ? order by id", [node_id])
    )
    row["corrections"] = list(
        db.query("select id, status from corrections where tau_node_id = ? order by id", [node_id])
    )
    return row


def path_ids(db: sqlite_utils.Database, node_id: int) -> list[int]:
    """Node ids from the episode's root down to `node_id`."""
    rows = db.execute(
        """with recursive path(id, parent_id, lvl) as (
               select id, parent_id, 0 from nodes where id = ?
               union all
               select nodes.id, nodes.parent_id, path.lvl + 1 from nodes
               join path on nodes.id = path.parent_id)
           select id from path order by lvl desc""",
        [node_id],
    ).fetchall()
    return [row[0] for row in rows]


def node_position(db: sqlite_utils.Database, node_id: int) -> tuple[int, int] | None:
    """(episode id, parent id) of a step, for placing a new node in a live tree."""
    row = db.execute("select episode_id, parent_id from nodes where id = ?", [node_id]).fetchone()
    return (row[0], row[1]) if row else None


def search_nodes(db: sqlite_utils.Database, run_id: int, text: str, *, limit: int = 200) -> list[int]:
    """Steps of a run whose action, observation or note contains `text`, in tree order."""
    if not text:
        return []
    like = f"%{text}%"
    rows = db.execute(
        """select n.id from nodes n join episodes e on e.id = n.episode_id
           where e.run_id = ? and (n.action like ? or n.observation like ?
               or n.id in (select node_id from notes where text like ?))
           order by n.episode_id, n.id limit ?""",
        [run_id, like, like, like, limit],
    ).fetchall()
    return [row[0] for row in rows]


# -- corrections --------------------------------------------------------------------


def corrections_for_review(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    """Every correction of a run with what the curation screen shows side by side: the
    original action at tau, the note, and the corrected action (the branch's first step,
    or the person's edit)."""
    rows = list(
        db.query(
            """select c.id, c.note_id, c.tau_node_id, c.leaf_node_id, c.status, c.edited_action,
                 c.reason, c.decided_by, c.decided_at,
                 notes.text as note, notes.author as note_author,
                 tau.action as original_action, tau.depth as tau_depth, tau.score as original_score,
                 leaf.score as branch_score, leaf.success as branch_success,
                 t.name as task, e.id as episode_id
               from corrections c
               join notes on notes.id = c.note_id
               join nodes tau on tau.id = c.tau_node_id
               join nodes leaf on leaf.id = c.leaf_node_id
               join episodes e on e.id = tau.episode_id
               join tasks t on t.id = e.task_id
               where e.run_id = ? order by c.id""",
            [run_id],
        )
    )
    for row in rows:
        row["branch_action"] = branch_first_action(db, row["leaf_node_id"], row["tau_depth"])
        row["corrected_action"] = (
            row["edited_action"] if row["status"] == "edited" and row["edited_action"] else row["branch_action"]
        )
    return rows


def branch_first_action(db: sqlite_utils.Database, leaf_node_id: int, tau_depth: int) -> str:
    """The action of the leaf's ancestor at tau's depth: the branch's first step."""
    row = db.execute(
        """with recursive path(id, parent_id, depth) as (
               select id, parent_id, depth from nodes where id = ?
               union all
               select nodes.id, nodes.parent_id, nodes.depth from nodes
               join path on nodes.id = path.parent_id where path.depth > ?)
           select nodes.action from path join nodes on nodes.id = path.id where path.depth = ?""",
        [leaf_node_id, tau_depth, tau_depth],
    ).fetchone()
    return (row[0] or "") if row else ""


def correction_counts(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    counts = dict.fromkeys(("proposed", "approved", "edited", "rejected"), 0)
    for status, count in db.execute(
        """select c.status, count(*) from corrections c join nodes n on n.id = c.tau_node_id
           join episodes e on e.id = n.episode_id where e.run_id = ? group by c.status""",
        [run_id],
    ).fetchall():
        counts[status] = count
    return counts


# -- datasets, adapters, training ---------------------------------------------------


def datasets(db: sqlite_utils.Database, run_id: int | None = None) -> list[dict]:
    where, params = ("where run_id = ?", [run_id]) if run_id is not None else ("", [])
    rows = list(db.query(f"select * from datasets {where} order by id desc", params))
    for row in rows:
        row["correction_ids"] = loads(row["correction_ids"], [])
    return rows


def adapters(db: sqlite_utils.Database) -> list[dict]:
    """Adapters, newest first, with their lineage and metrics parsed."""
    rows = list(
        db.query(
            """select a.*, d.name as dataset_name, d.n_examples from adapters a
               left join datasets d on d.id = a.dataset_id order by a.id desc"""
        )
    )
    for row in rows:
        row["lineage"] = loads(row["lineage"], {})
        row["metrics"] = loads(row["metrics"], {})
    return rows


def train_log(db: sqlite_utils.Database, adapter_id: int) -> list[tuple[int, float]]:
    return [
        (step, loss)
        for step, loss in db.execute(
            "select step, loss from train_log where adapter_id = ? order by step", [adapter_id]
        ).fetchall()
    ]


# -- evaluation ---------------------------------------------------------------------


def evals(db: sqlite_utils.Database, run_id: int | None = None) -> list[dict]:
    """Pass@k rows (with their 95% interval), by run, policy and k."""
    where, params = ("where run_id = ?", [run_id]) if run_id is not None else ("", [])
    return list(
        db.query(
            f"""select run_id, policy, k, pass_at_k, ci_low, ci_high, n_tasks from evals {where}
                order by run_id desc, policy, k""",
            params,
        )
    )


def eval_curves(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Group Pass@k rows into one curve per (run, policy), labelled for a plot legend."""
    runs = {row["run_id"] for row in rows}
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        label = row["policy"] if len(runs) == 1 else f"run {row['run_id']} {row['policy']}"
        curves.setdefault(label, []).append((row["k"], row["pass_at_k"]))
    for points in curves.values():
        points.sort()
    return curves


def table_counts(db: sqlite_utils.Database) -> dict[str, Any]:
    """Row counts of the main tables (shown on an empty store, used by tests)."""
    return {
        name: db.execute(f"select count(*) from [{name}]").fetchone()[0]
        for name in ("runs", "episodes", "nodes", "notes", "corrections", "adapters", "evals")
        if name in db.table_names()
    }
