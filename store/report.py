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
