"""Training seeds in the store: a run with several `[experiment] seeds` keeps each seed's
data in a seed run of its own (`runs.parent_run_id`, `runs.seed`), and its stage rows say
which seed they belong to. The seed logic lives in workbench/seeds.py; this module only
writes and reads. Writers run inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlite_utils

from store.db import now


def create_seed_run(
    db: sqlite_utils.Database, parent_run_id: int, seed: int, *, name: str, config: dict, stages: list[str],
    provenance: dict,
) -> int:
    """The run that holds one training seed's episodes, adapters and results."""
    return db["runs"].insert({
        "name": name, "config": json.dumps(config), "config_path": "", "stages": json.dumps(stages),
        "status": "running", "created_at": now(), "provenance": json.dumps(provenance), "tokens_generated": 0,
        "wall_time": 0.0, "parent_run_id": parent_run_id, "seed": seed,
    }).last_pk


def seed_runs(db: sqlite_utils.Database, parent_run_id: int) -> dict[int, int]:
    """seed -> the id of its seed run, for a run with several training seeds (else empty)."""
    return {seed: run_id for run_id, seed in db.execute(
        "select id, seed from runs where parent_run_id = ? order by id", [parent_run_id]).fetchall()}


def parent_of(db: sqlite_utils.Database, run_id: int) -> tuple[int, int] | None:
    """(parent run, seed) of a seed run; None for a run a person started."""
    row = db.execute("select parent_run_id, seed from runs where id = ?", [run_id]).fetchone()
    return (row[0], row[1]) if row and row[0] is not None else None


def set_stage_seeds(db: sqlite_utils.Database, run_id: int, seeds: Sequence[int | None]) -> None:
    """The training seed of each stage row of a new run, by position (None: one seed)."""
    for position, seed in enumerate(seeds):
        if seed is not None:
            db.execute("update run_stages set seed = ? where run_id = ? and position = ?", [seed, run_id, position])


def set_seed_runs_status(db: sqlite_utils.Database, parent_run_id: int, status: str) -> None:
    """A run's seed runs end as it ends (finished, interrupted, failed)."""
    finished_at = now() if status == "finished" else None
    db.execute("update runs set status = ?, finished_at = ? where parent_run_id = ?",
               [status, finished_at, parent_run_id])


def latest_unfinished_run(db: sqlite_utils.Database) -> int | None:
    """The run `--resume` continues: the newest unfinished run a person started (a seed run
    is continued through its parent)."""
    row = db.execute(
        "select id from runs where status != 'finished' and parent_run_id is null order by id desc limit 1"
    ).fetchone()
    return row[0] if row else None


def latest_run(db: sqlite_utils.Database) -> int | None:
    """The newest run a person started (not a seed run)."""
    row = db.execute("select max(id) from runs where parent_run_id is null").fetchone()
    return row[0] if row else None
