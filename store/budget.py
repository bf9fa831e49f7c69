"""What a method spent: environment steps and generated tokens of a run's episodes of one
purpose, and the budgets recorded with a run's adapters (for the results table)."""

from __future__ import annotations

import sqlite_utils

from store.queries import loads


def spent(
    db: sqlite_utils.Database, run_id: int, purpose: str, *, branches_only: bool = False, original_only: bool = False
) -> tuple[int, int]:
    """(environment steps, generated tokens) of the run's episodes of `purpose`.

    Every non-root node is one environment step. `branches_only` counts only branch steps
    (an ablation episode's copied history was not played again); `original_only` only the
    steps of original paths (exploration's share of LEAFE's budget)."""
    branch = " and nodes.branch_depth > 0" if branches_only else ""
    branch += " and nodes.branch_depth = 0" if original_only else ""
    steps, tokens = db.execute(
        f"""select count(*), coalesce(sum(nodes.tokens), 0) from nodes
            join episodes on episodes.id = nodes.episode_id
            where episodes.run_id = ? and episodes.purpose = ? and nodes.parent_id is not null{branch}""",
        [run_id, purpose],
    ).fetchone()
    return int(steps), int(tokens)


def next_rollout(db: sqlite_utils.Database, run_id: int, purpose: str) -> int:
    """The rollout index a new wave of the run's `purpose` episodes starts at."""
    row = db.execute("select max(rollout) from episodes where run_id = ? and purpose = ?", [run_id, purpose]).fetchone()
    return 0 if row[0] is None else row[0] + 1


def episodes_of(
    db: sqlite_utils.Database, run_id: int, purpose: str, *, status: str | None = None, rollout: int | None = None
) -> list[int]:
    """Ids of the run's `purpose` episodes, optionally only those with `status` or of one `rollout` (a wave)."""
    where, values = "run_id = ? and purpose = ?", [run_id, purpose]
    if status is not None:
        where, values = where + " and status = ?", [*values, status]
    if rollout is not None:
        where, values = where + " and rollout = ?", [*values, rollout]
    return [row[0] for row in db.execute(f"select id from episodes where {where} order by id", values).fetchall()]


def branch_points(db: sqlite_utils.Database, run_id: int, max_level: int) -> list[dict]:
    """Every note of the run's exploration (`explore` episodes) at which backtracking may
    branch: notes written on steps at branch depth below `max_level`. Each with `level`
    (the branch depth its branches get), `tau_depth` (the depth of the step it rewinds to)
    and `branches` (branches already started there)."""
    return list(db.query(
        """select notes.id, notes.text, notes.rollback_node_id, nodes.episode_id,
                  nodes.branch_depth + 1 as level, tau.depth as tau_depth,
                  (select count(*) from nodes b where b.note_id = notes.id and b.branch_depth > 0) as branches
           from notes join nodes on nodes.id = notes.node_id
           join nodes tau on tau.id = notes.rollback_node_id
           join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = 'explore' and nodes.branch_depth < ?
           order by notes.id""",
        [run_id, max_level],
    ))


BUDGET_KEYS = ("env_steps", "env_steps_budget", "tokens", "train_examples", "train_tokens", "budget_warning")


def adapter_budgets(db: sqlite_utils.Database, run_id: int) -> dict[str, dict]:
    """adapter name -> its kind and the budget entries of its metrics, for the run's adapters."""
    budgets = {}
    for name, kind, metrics in db.execute(
        "select name, kind, metrics from adapters where run_id = ? order by id", [run_id]
    ).fetchall():
        values = loads(metrics, {})
        budgets[name] = {"kind": kind, **{key: values[key] for key in BUDGET_KEYS if key in values}}
    return budgets
