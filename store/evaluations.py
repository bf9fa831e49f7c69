"""Evaluations a person starts from the Results screen, each recorded under the run it
belongs to: what it used (policies, tasks, n, k, seed) and, once it ends, what it found.

The counts and Pass@k rows themselves stay in `eval_results` / `evals` / `eval_pairs`
under the run (the latest evaluation of a policy is the one shown); this module keeps the
record of each evaluation, and reads the per-task counts the task-by-task screen compares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from store.db import now, transaction
from store.queries import dumps, loads


@dataclass(frozen=True)
class Evaluation:
    """One recorded evaluation of a run."""

    id: int
    run_id: int
    policies: list[str]
    tasks: Any  # None (the run's test tasks), a count, or a list of task names
    n: int
    k: list[int]
    seed: int
    status: str
    error: str
    summary: dict
    created_at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Evaluation:
        return cls(
            id=row["id"], run_id=row["run_id"], policies=loads(row["policies"], []) or [],
            tasks=loads(row["tasks"], None), n=row["n"], k=loads(row["k"], []) or [], seed=row["seed"],
            status=row["status"] or "", error=row["error"] or "", summary=loads(row["summary"], {}) or {},
            created_at=row["created_at"] or "",
        )


def start_evaluation(
    db: sqlite_utils.Database, run_id: int, *, policies: Sequence[str], tasks: Any, n: int,
    k: Sequence[int], seed: int,
) -> int:
    """Record an evaluation of `run_id` as running; returns its id."""
    with transaction(db):
        return db["evaluations"].insert({
            "run_id": run_id, "policies": dumps(list(policies)), "tasks": dumps(tasks), "n": n,
            "k": dumps(list(k)), "seed": seed, "status": "running", "error": "", "summary": dumps({}),
            "created_at": now(), "finished_at": None,
        }).last_pk


def finish_evaluation(
    db: sqlite_utils.Database, evaluation_id: int, status: str, *, summary: Mapping[str, Any] | None = None,
    error: str = "",
) -> None:
    """How the evaluation ended (finished, failed, cancelled), with what it found."""
    with transaction(db):
        db["evaluations"].update(evaluation_id, {
            "status": status, "error": error, "summary": dumps(dict(summary or {})), "finished_at": now(),
        })


def evaluations_of_run(db: sqlite_utils.Database, run_id: int) -> list[Evaluation]:
    """The run's recorded evaluations, newest first."""
    return [Evaluation.from_row(row) for row in
            db.query("select * from evaluations where run_id = ? order by id desc", [run_id])]


def evaluated_policies(db: sqlite_utils.Database, run_id: int) -> list[str]:
    """Policies with per-task results in the run, in the order they were first stored."""
    return [row[0] for row in db.execute(
        "select policy from eval_results where run_id = ? group by policy order by min(id)", [run_id]
    ).fetchall()]


def task_results(db: sqlite_utils.Database, run_id: int, policy: str) -> dict[str, tuple[int, int]]:
    """task name -> (n, c) of one policy's stored results in the run."""
    return {name: (n, c) for name, n, c in db.execute(
        """select tasks.name, r.n, r.c from eval_results r join tasks on tasks.id = r.task_id
           where r.run_id = ? and r.policy = ? order by tasks.name""",
        [run_id, policy],
    ).fetchall()}


def evaluation_episodes(db: sqlite_utils.Database, run_id: int, policy: str, task: str) -> list[dict]:
    """A policy's evaluation episodes of one task in the run, by rollout, each with the
    steps of its path (action, observation, score), oldest first."""
    episodes = list(db.query(
        """select e.id, e.rollout, e.status, e.success, e.score, e.steps from episodes e
           join tasks on tasks.id = e.task_id
           where e.run_id = ? and e.purpose = 'evaluate' and e.policy = ? and tasks.name = ?
           order by e.rollout, e.id""",
        [run_id, policy, task],
    ))
    for episode in episodes:
        # Evaluation never branches: the episode's steps are one path, in depth order.
        episode["path"] = list(db.query(
            """select depth, action, observation, score, done, success from nodes
               where episode_id = ? and depth > 0 order by depth, id""",
            [episode["id"]],
        ))
    return episodes
