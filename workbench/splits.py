"""A run's task splits: the tasks it trains on (`env.tasks`), chooses settings on
(`[leafe] validation_tasks`, which also score each LEAFE round) and tests on (`evaluate.tasks`, default `env.tasks`),
recorded with the run when it starts, with the test tasks that are not held out.

A test task is not held out when it is also a training or validation task (`overlap`), or,
in an environment whose suite offers `start_state(task)` (navigation: the layout, the
agent's cell and heading), when its start state equals a training or validation task's
(`same_start`): a MiniGrid seed is only a name for its start, and MiniGrid-Empty-Random-5x5
has just 32 distinct ones. Such tasks are flagged, not refused: a run that tests on its
training tasks on purpose (a smoke test, a quick look) still runs, and a run with an
`evaluate` stage says in one warning line which test tasks are not held out and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store import splits as stored
from store.db import transaction
from workbench.config import Config
from workbench.context import StageContext
from workbench.envs.base import Task


def split_tasks(config: Config, suite: Any) -> dict[str, list[Task]]:
    """The training, validation and test tasks the config names (loaded by the suite)."""
    validation = config.leafe.validation_tasks
    test = config.evaluate.tasks if config.evaluate.tasks is not None else config.env.tasks
    return {
        "training": suite.load_tasks(config.env.tasks),
        "validation": suite.load_tasks(validation) if validation is not None else [],
        "test": suite.load_tasks(test),
    }


def same_starts(suite: Any, test: Sequence[Task], others: Sequence[Task]) -> dict[str, str]:
    """test task name -> the first training or validation task with the same start state
    (empty where the suite cannot say what a task starts from)."""
    start_state = getattr(suite, "start_state", None)
    if start_state is None:
        return {}
    seen: dict[Any, str] = {}
    for task in others:
        seen.setdefault(start_state(task), task.name)
    clashes = {}
    for task in test:
        twin = seen.get(start_state(task))
        if twin is not None and twin != task.name:
            clashes[task.name] = twin
    return clashes


def run_splits(config: Config, suite: Any) -> dict[str, Any]:
    """The splits as recorded: the three lists of task names, `overlap` (test task -> the
    split it is also in), `same_start` (test task -> the training or validation task it
    starts like) and `held_out` (how many test tasks are neither)."""
    tasks = split_tasks(config, suite)
    names = {split: [task.name for task in listed] for split, listed in tasks.items()}
    overlap = {}
    for name in names["test"]:
        for split in ("training", "validation"):
            if name in names[split]:
                overlap[name] = split
                break
    rest = [task for task in tasks["test"] if task.name not in overlap]
    same_start = same_starts(suite, rest, [*tasks["training"], *tasks["validation"]])
    return {**names, "overlap": overlap, "same_start": same_start,
            "held_out": len(names["test"]) - len(overlap) - len(same_start)}


def splits_warning(splits: dict[str, Any]) -> str | None:
    """One line naming the test tasks that are not held out, or None."""
    reasons = [f"{name} is a {split} task" for name, split in splits["overlap"].items()]
    reasons += [f"{name} starts like {twin}" for name, twin in splits["same_start"].items()]
    if not reasons:
        return None
    shown = "; ".join(reasons[:4]) + (f"; and {len(reasons) - 4} more" if len(reasons) > 4 else "")
    return (f"warning: {len(reasons)} of the {len(splits['test'])} test tasks are not held out "
            f"({shown}); their results are not held-out measures")


def record_splits(context: StageContext) -> dict[str, Any]:
    """Record the run's splits once (a resumed run keeps them); say the warning when the run
    evaluates."""
    splits = stored.get_splits(context.db, context.run_id)
    if splits is None:
        splits = run_splits(context.config, context.suite)
        with transaction(context.db):
            stored.set_splits(context.db, context.run_id, splits)
        warning = splits_warning(splits)
        if warning and "evaluate" in context.config.stages.run:
            context.say(warning)
    return splits


def splits_line(splits: dict[str, Any] | None) -> str | None:
    """The Results screen's line: how many tasks in each split, and how many test tasks are held out."""
    if not splits:
        return None
    line = (f"Splits: {len(splits['training'])} training, {len(splits['validation'])} validation, "
            f"{len(splits['test'])} test tasks; {splits['held_out']} test tasks held out")
    not_held = [*splits["overlap"], *splits["same_start"]]
    if not_held:
        line += f" (not held out: {', '.join(not_held[:6])}{' ...' if len(not_held) > 6 else ''})"
    return line
