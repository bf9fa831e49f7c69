"""What `python -m workbench.report` reads from a run's store: its Pass@k rows and its
trained adapters with their budgets and training compute. Read-only."""

from __future__ import annotations

import json

import sqlite_utils


def latest_run(db: sqlite_utils.Database) -> int | None:
    row = db.execute("select max(id) from runs").fetchone()
    return row[0] if row else None


def run_header(db: sqlite_utils.Database, run_id: int) -> dict | None:
    rows = list(db.query("select id, name, status, created_at, tokens_generated, wall_time from runs where id = ?",
                         [run_id]))
    return rows[0] if rows else None


def pass_at_k_rows(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    return list(db.query(
        "select policy, k, pass_at_k, ci_low, ci_high, n_tasks, overlap_tasks from evals where run_id = ? order by id",
        [run_id],
    ))


def adapter_rows(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    """The run's adapters: name, kind and their metrics (decoded)."""
    return [
        {"name": row["name"], "kind": row["kind"], "metrics": json.loads(row["metrics"] or "{}")}
        for row in db.query("select name, kind, metrics from adapters where run_id = ? order by id", [run_id])
    ]


def actions_read(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    """For each (policy, purpose) of the run's episodes: steps taken and how often the
    environment read each action from the policy's text (`None`: it read none). Environments
    that do not report the action they executed (code) give no rows."""
    rows = db.query(
        """select episodes.policy, episodes.purpose,
                  coalesce(json_extract(nodes.feedback, '$.action_name'), json_extract(nodes.feedback, '$.action'))
                      as action,
                  json_type(nodes.feedback, '$.action') is not null as reports, count(*) as steps
           from nodes join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and nodes.depth > 0 and json_valid(nodes.feedback)
           group by 1, 2, 3, 4 order by 1, 2""",
        [run_id],
    )
    table: dict[tuple[str, str], dict] = {}
    for row in rows:
        entry = table.setdefault((row["policy"], row["purpose"]),
                                 {"policy": row["policy"], "purpose": row["purpose"], "steps": 0, "reported": 0,
                                  "actions": {}})
        entry["steps"] += row["steps"]
        if row["reports"]:
            entry["reported"] += row["steps"]
            key = "none" if row["action"] is None else str(row["action"])
            entry["actions"][key] = entry["actions"].get(key, 0) + row["steps"]
    return [entry for entry in table.values() if entry["reported"]]
