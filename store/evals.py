"""Evaluation results: per policy and task the (n, c) counts behind Pass@k, and per
policy and k the mean with its bootstrap interval."""

from __future__ import annotations

from collections.abc import Mapping

import sqlite_utils

Table = dict[str, dict[str, dict[str, float]]]


def replace_policy(
    db: sqlite_utils.Database,
    run_id: int,
    policy: str,
    counts: Mapping[int, tuple[int, int]],
    pass_at_k: Mapping[int, tuple[float, float, float]],
) -> None:
    """Store a policy's results, replacing any it had in this run: `counts` maps a task id
    to (n, c), `pass_at_k` maps k to (mean, ci_low, ci_high) over `len(counts)` tasks.
    Call it inside a transaction."""
    db.execute("delete from eval_results where run_id = ? and policy = ?", [run_id, policy])
    db.execute("delete from evals where run_id = ? and policy = ?", [run_id, policy])
    db["eval_results"].insert_all(
        {"run_id": run_id, "policy": policy, "task_id": task_id, "n": n, "c": c}
        for task_id, (n, c) in sorted(counts.items())
    )
    db["evals"].insert_all(
        {"run_id": run_id, "policy": policy, "k": k, "pass_at_k": mean, "ci_low": low, "ci_high": high,
         "n_tasks": len(counts)}
        for k, (mean, low, high) in pass_at_k.items()
    )


def table(db: sqlite_utils.Database, run_id: int) -> Table:
    """A run's Pass@k table: policy -> str(k) -> pass_at_k, ci_low, ci_high, in the order
    the policies were evaluated."""
    result: Table = {}
    for row in db.query(
        "select policy, k, pass_at_k, ci_low, ci_high from evals where run_id = ? order by id", [run_id]
    ):
        result.setdefault(row["policy"], {})[str(row["k"])] = {
            "pass_at_k": row["pass_at_k"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
        }
    return result
