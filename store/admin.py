"""Whole-run housekeeping the TUI offers: deleting a run and everything that hangs off it."""

from __future__ import annotations

import sqlite_utils

from store.db import transaction
from store.errors import LeafeError


def delete_run(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    """Delete a run with its episodes, nodes, notes, corrections, decisions and eval rows,
    in one transaction; returns how many rows of each went.

    Tasks are shared between runs and stay. Datasets and adapters trained from the run
    stay too (they are files a person may still use; their lineage JSON keeps the run id),
    but lose their link to it.
    """
    if db.execute("select 1 from runs where id = ?", [run_id]).fetchone() is None:
        raise LeafeError(f"no run {run_id}")
    episodes = "select id from episodes where run_id = :run"
    nodes = f"select id from nodes where episode_id in ({episodes})"
    notes = f"select id from notes where node_id in ({nodes}) or rollback_node_id in ({nodes})"
    corrections = (
        f"select id from corrections where tau_node_id in ({nodes}) or leaf_node_id in ({nodes})"
        f" or note_id in ({notes})"
    )
    removed: dict[str, int] = {}
    with transaction(db):

        def run(name: str, sql: str) -> None:
            removed[name] = removed.get(name, 0) + db.execute(sql, {"run": run_id}).rowcount

        run("decisions", f"delete from decisions where correction_id in ({corrections})")
        run("corrections", f"delete from corrections where id in ({corrections})")
        # Notes and nodes point at each other (a node's note in context, a note's step).
        db.execute(f"update nodes set note_id = null where id in ({nodes})", {"run": run_id})
        run("notes", f"delete from notes where id in ({notes})")
        run("nodes", f"delete from nodes where id in ({nodes})")
        run("episodes", "delete from episodes where run_id = :run")
        run("eval_results", "delete from eval_results where run_id = :run")
        run("evals", "delete from evals where run_id = :run")
        db.execute("update adapters set run_id = null where run_id = :run", {"run": run_id})
        db.execute("update datasets set run_id = null where run_id = :run", {"run": run_id})
        run("run_stages", "delete from run_stages where run_id = :run")
        run("runs", "delete from runs where id = :run")
    return removed
