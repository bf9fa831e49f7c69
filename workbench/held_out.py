"""Which of the tasks a person chose to evaluate on are not held out: tasks an adapter
policy was trained on (its dataset's tasks) or that the run itself explored. The Results
screen shows this line before an evaluation starts; the evaluate stage flags the same
tasks in its results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlite_utils

from store import splits as stored_splits
from workbench.distill.adapters import ADAPTER_PREFIX, training_task_names


def parse_tasks(text: str) -> int | list[str] | None:
    """The form's tasks field: empty is the run's test tasks, a number the suite's first
    tasks, anything else a comma-separated list of task names."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    return [name.strip() for name in text.split(",") if name.strip()]


def named_tasks(db: sqlite_utils.Database, run_id: int, tasks: int | list[str] | None) -> list[str] | None:
    """The task names an evaluation would play, where they can be told without loading the
    suite: a list as given, or the run's recorded test split; None otherwise."""
    if isinstance(tasks, list):
        return tasks
    if tasks is None:
        splits = stored_splits.get_splits(db, run_id) or {}
        test = splits.get("test")
        return list(test) if isinstance(test, list) else None
    return None


def trained_on(db: sqlite_utils.Database, policies: Sequence[str], names: Sequence[str]) -> dict[str, list[str]]:
    """policy -> the chosen tasks it was trained on (only policies with any)."""
    chosen = set(names)
    found = {}
    for policy in policies:
        if policy.startswith(ADAPTER_PREFIX):
            shared = sorted(training_task_names(db, policy) & chosen)
            if shared:
                found[policy] = shared
    return found


def held_out_line(db: sqlite_utils.Database, run_id: int, policies: Sequence[str], tasks: Any) -> str:
    """One line on the chosen tasks: how many are held out from every adapter's training,
    or which policy trained on which of them."""
    names = named_tasks(db, run_id, tasks)
    if names is None:
        return "Name the tasks (comma-separated) to check them against what each adapter trained on."
    if not names:
        return "No tasks chosen."
    overlap = trained_on(db, policies, names)
    if not overlap:
        return f"Held out: none of these {len(names)} tasks was trained on by the adapters evaluated."
    parts = [f"{policy} trained on {len(shared)} ({', '.join(shared[:3])}{' …' if len(shared) > 3 else ''})"
             for policy, shared in overlap.items()]
    return "Not held out: " + "; ".join(parts) + f" of these {len(names)} tasks; results there are marked *."
