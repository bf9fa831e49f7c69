"""What a method spent: environment steps and generated tokens of a run's episodes of one
purpose, and the budgets recorded with a run's adapters (for the results table)."""

from __future__ import annotations

import sqlite_utils

from store.queries import loads


def spent(db: sqlite_utils.Database, run_id: int, purpose: str, *, branches_only: bool = False) -> tuple[int, int]:
    """(environment steps, generated tokens) of the run's episodes of `purpose`.

    Every non-root node is one environment step. `branches_only` counts only branch steps
    (an ablation episode's copied history was not played again)."""
    branch = " and nodes.branch_depth > 0" if branches_only else ""
    steps, tokens = db.execute(
        f"""select count(*), coalesce(sum(nodes.tokens), 0) from nodes
            join episodes on episodes.id = nodes.episode_id
            where episodes.run_id = ? and episodes.purpose = ? and nodes.parent_id is not null{branch}""",
        [run_id, purpose],
    ).fetchone()
    return int(steps), int(tokens)


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
