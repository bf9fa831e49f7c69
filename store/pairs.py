"""Paired comparisons of evaluated policies (`eval_pairs`), and the flags on results from
tasks a policy was trained on (`eval_results.trained_on`, `evals.overlap_tasks`).

The evaluate stage computes the numbers (workbench/paired.py); this module only stores
and reads them. Writers run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils


@dataclass(frozen=True)
class EvalPair:
    """One stored comparison: `policy` minus `reference` in Pass@k, per task, averaged."""

    run_id: int
    policy: str
    reference: str
    k: int
    diff: float
    ci_low: float
    ci_high: float
    n_tasks: int
    overlap_tasks: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EvalPair:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


PAIR_COLUMNS = ("policy", "reference", "k", "diff", "ci_low", "ci_high", "n_tasks", "overlap_tasks")


def replace_pairs(db: sqlite_utils.Database, run_id: int, pairs: Iterable[Mapping[str, Any]]) -> None:
    """The run's comparisons, replacing any stored before (a resumed evaluation recomputes
    them all from the stored counts)."""
    db.execute("delete from eval_pairs where run_id = ?", [run_id])
    db["eval_pairs"].insert_all({"run_id": run_id, **{name: pair[name] for name in PAIR_COLUMNS}} for pair in pairs)


def pairs(db: sqlite_utils.Database, run_id: int | None = None) -> list[EvalPair]:
    """Stored comparisons of one run (or of every run, newest first), by reference, policy and k."""
    where, params = ("where run_id = ?", [run_id]) if run_id is not None else ("", [])
    return [
        EvalPair.from_row(row)
        for row in db.query(
            f"select * from eval_pairs {where} order by run_id desc, reference = 'base' desc, id", params
        )
    ]


def flag_trained_tasks(db: sqlite_utils.Database, run_id: int, policy: str, task_ids: Iterable[int]) -> int:
    """Mark the policy's results on the tasks it was trained on, and on its Pass@k rows how
    many of their tasks those are; returns that count."""
    ids = sorted(set(task_ids))
    db.execute("update eval_results set trained_on = 0 where run_id = ? and policy = ?", [run_id, policy])
    if ids:
        marks = ",".join("?" * len(ids))
        db.execute(
            f"update eval_results set trained_on = 1 where run_id = ? and policy = ? and task_id in ({marks})",
            [run_id, policy, *ids],
        )
    overlap = db.execute(
        "select coalesce(sum(trained_on), 0) from eval_results where run_id = ? and policy = ?", [run_id, policy]
    ).fetchone()[0]
    db.execute("update evals set overlap_tasks = ? where run_id = ? and policy = ?", [overlap, run_id, policy])
    return overlap


def overlap_by_policy(db: sqlite_utils.Database, run_id: int | None = None) -> dict[tuple[int, str], int]:
    """(run, policy) -> how many of its evaluation tasks it was trained on, where any."""
    where, params = ("and run_id = ?", [run_id]) if run_id is not None else ("", [])
    return {
        (row[0], row[1]): row[2]
        for row in db.execute(
            f"select run_id, policy, max(overlap_tasks) from evals where overlap_tasks > 0 {where} "
            "group by run_id, policy",
            params,
        ).fetchall()
    }
