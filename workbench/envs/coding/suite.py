"""The coding suite and its environment: one shared sandbox for a suite's tasks, one
action (the model's answer) checked per step; the package docstring has the whole picture.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from workbench.config import EnvConfig
from workbench.envs import register_suite
from workbench.envs.base import StepResult, Suite, Task, feedback_of
from workbench.envs.coding.answers import (
    compose_program,
    extract_code,
    prompt_parts,
    submitted_block,
)
from workbench.envs.coding.checks import TestPlan, plan_tests
from workbench.envs.coding.feedback import feedback_from, observation_text
from workbench.envs.coding.notes import experience_note
from workbench.envs.coding.stdio import (
    stdio_feedback,
    stdio_observation,
    stdio_request,
    stdio_statement,
)
from workbench.envs.coding.tasks import read_jsonl_tasks, read_suite, select_tasks, task_of
from workbench.errors import EnvironmentSetupError
from workbench.prompts import CODING
from workbench.sandbox import Sandbox, require_process_cap

__all__ = [
    "INSTRUCTION", "WORDS_INSTRUCTION", "CodingEnvironment", "CodingSuite", "TestPlan",
    "compose_program", "experience_note", "extract_code", "feedback_from", "observation_text",
    "plan_tests", "read_jsonl_tasks",
]

INSTRUCTION = (
    "Complete the function `{entry_point}` below. Answer with the whole function "
    "(with any imports it needs) in a ```python code block."
)
WORDS_INSTRUCTION = (
    "Write the Python function `{entry_point}`. Answer with the whole function "
    "(with any imports it needs) in a ```python code block."
)


@register_suite("coding")
class CodingSuite(Suite):
    """HumanEval or a JSONL file of tasks in its shape, with one shared sandbox."""

    default_prompts = CODING
    supports_snapshot = True

    def __init__(self, config: EnvConfig) -> None:
        require_process_cap(config.sandbox)  # refused before a run writes anything
        super().__init__(config)
        self._records: list[dict[str, Any]] | None = None
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()

    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        """`None`: all; an int: the first N; a list: those task ids (an int item is a position)."""
        return select_tasks([task_of(record) for record in self.records()], selection, self.config.suite)

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
        """The task's reference function (prompt + canonical body), or a stdin/stdout task's
        reference program, when the suite has one."""
        if task.spec.get("kind") == "stdio":
            return task.spec.get("solution")
        body = task.spec.get("canonical_solution")
        return task.spec["prompt"] + body if body else None

    def reflect_template(self, steps: list[dict[str, Any]]) -> tuple[str, int]:
        """An experience note from the last step's feedback, and that step's depth to redo."""
        if len(steps) < 2:
            return "No code was submitted yet. Answer with the whole program or function in a python block.", 1
        last = steps[-1]
        return experience_note(feedback_of(last)), int(last.get("depth") or len(steps) - 1)


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
        if spec.get("kind") == "stdio":
            return stdio_statement(spec)
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
        code = extract_code(action)
        if spec.get("kind") == "stdio":
            stdio, limits = stdio_request(spec, self.config)
            result = self.sandbox().run(code, stdio=stdio, limits=limits, main=True)
            feedback = {**stdio_feedback(result, spec), "submitted": submitted_block(code)}
            self.last_feedback = feedback
            done = feedback["success"] or self.steps >= self.config.max_steps
            return StepResult(stdio_observation(feedback), feedback, feedback["score"], done)
        plan = plan_tests(spec["test"])
        program, prelude = compose_program(spec["prompt"], spec["entry_point"], code)
        result = self.sandbox().run(
            program, checks=list(plan.checks), setup=plan.setup, entry_point=spec["entry_point"],
            prelude=prelude, main=False,
        )
        feedback = {**feedback_from(result, plan), "submitted": submitted_block(code)}
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
