"""Runs (with their stages and provenance) and tasks; JSON columns in and out.

Plain functions over a `sqlite_utils.Database`; callers wrap writes that belong
together in `store.db.transaction` so a killed run loses at most one step.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from store.db import now
from store.records import decode_json, encode_json

dumps = encode_json


def loads(text: str | None, default: Any = None) -> Any:
    return decode_json(text, default)


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


def skipped_adapters_by_seed(db: sqlite_utils.Database, run_id: int) -> dict[int | None, set[str]]:
    """Training seed (None: one seed) -> the adapters its training stages skipped for want
    of examples. A seed's stage rows are stored with the run a person started."""
    skipped: dict[int | None, set[str]] = {}
    for row in stage_rows(db, run_id):
        adapter = (loads(row["summary"], {}) or {}).get("skipped_adapter") if row["status"] == "finished" else None
        if adapter:
            skipped.setdefault(row["seed"], set()).add(adapter)
    return skipped


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


def keep_stage_tally(db: sqlite_utils.Database, run_id: int, position: int, tally: dict) -> None:
    """A stopped stage's counts so far, in its summary column; its status stays as it was,
    and the summary it writes when it finishes replaces them."""
    db["run_stages"].update((run_id, position), {"summary": dumps(tally)})


# -- tasks --------------------------------------------------------------------------


def ensure_task(db: sqlite_utils.Database, env: str, name: str, spec: dict) -> int:
    row = db.execute("select id from tasks where env = ? and name = ?", [env, name]).fetchone()
    if row:
        return row[0]
    return db["tasks"].insert({"env": env, "name": name, "spec": dumps(spec)}).last_pk


def task_name(db: sqlite_utils.Database, task_id: int) -> str:
    return db.execute("select name from tasks where id = ?", [task_id]).fetchone()[0]


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
