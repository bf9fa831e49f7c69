"""What an environment kind implements (DESIGN.md, "Environments"): a `Suite` and its
`Environment`s.

An environment instance runs one episode at a time: `reset(task)` gives the first
observation, `step(action_text)` executes one action and answers with rich feedback.
`snapshot()`/`restore()` let backtracking rewind, where the suite says so
(`Suite.supports_snapshot`); otherwise an environment is rewound by `reset(task)` and a
replay of the stored actions from the root (so its steps must be deterministic given the
task and the actions).

A suite lists the tasks, makes environments, and declares the optional parts later
stages use (a template reflection, an expert, a canonical solution, snapshots, default
prompts): each has a default on `Suite` that means "not offered", so a stage asks the
suite instead of probing it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from workbench.config import EnvConfig


@dataclass(frozen=True)
class Task:
    """One task of a suite. `name` is the suite's own id (`HumanEval/0`, `MiniGrid-FourRooms-v0/7`)."""

    name: str
    spec: dict[str, Any] = field(default_factory=dict)


class StepResult(NamedTuple):
    """What `step` answers: the DESIGN.md 4-tuple (observation, feedback, score, done).

    `feedback` is a JSON-serialisable dict. It holds `"success": bool` when the
    environment knows the task is solved; otherwise success means done with score 1.
    """

    observation: str
    feedback: dict[str, Any]
    score: float
    done: bool


def step_succeeded(result: StepResult | tuple) -> bool:
    """Whether a step solved its task, for environments that say so and those that do not."""
    observation, feedback, score, done = result
    if isinstance(feedback, dict) and "success" in feedback:
        return bool(feedback["success"])
    return bool(done) and float(score) >= 1.0


def execute(env: Environment, text: str) -> tuple[StepResult, bool]:
    """One action through the environment, and whether it solved the task. An environment
    that raises gives a failed step: its bug must not end the run, and replaying a stored
    path (rewinding without snapshots, after a resume) meets the same failed step again
    instead of the exception."""
    try:
        result = StepResult(*env.step(text))
        return result, step_succeeded(result)
    except Exception as error:
        message = f"environment error: {type(error).__name__}: {error}"
        return StepResult(message, {"error": message, "success": False}, 0.0, False), False


def feedback_of(step: Mapping[str, Any]) -> dict[str, Any]:
    """A stored step's feedback as a dict, whether the store handed it over decoded or as
    JSON text; {} for none or for text that is not a JSON object, so a template reflection
    never fails on one odd row."""
    feedback = step.get("feedback")
    if isinstance(feedback, str):
        try:
            feedback = json.loads(feedback)
        except json.JSONDecodeError:
            return {}
    return feedback if isinstance(feedback, dict) else {}


@runtime_checkable
class Environment(Protocol):
    """One episode's world. Instances are cheap; the explorer makes one per live episode."""

    def reset(self, task: Task) -> str:
        """Start `task` and return the first observation (the text the policy reads)."""
        ...

    def step(self, action: str) -> StepResult:
        """Execute the model's text as one action and return (observation, feedback, score, done)."""
        ...

    def snapshot(self) -> Any:
        """The state needed to come back to this exact point; called only where the suite's
        `supports_snapshot` is true."""
        ...

    def restore(self, state: Any) -> None:
        """Return to a state taken by `snapshot` (where the suite's `supports_snapshot` is true)."""
        ...


class TaskLoader(Protocol):
    """How a kind of environment lists its tasks: `load_tasks(suite, selection)`."""

    def __call__(self, suite: str, selection: int | list[str | int] | None) -> list[Task]: ...


class Suite(ABC):
    """An environment kind as the stages see it. Subclass it, implement `load_tasks` and
    `new_environment`, override the optional parts it offers, and register it by name with
    `@register_suite("name")` (workbench.envs)."""

    kind: str = ""
    """The name the config gave (`env.kind`): stored with each task of a run."""

    default_prompts: Mapping[str, str] | None = None
    """The policy's prompts for this kind (keys of `[prompts]`); None: the coding ones."""

    supports_snapshot: bool = False
    """Whether this suite's environments snapshot() and restore(). False: backtracking
    rewinds by reset(task) and a replay of the stored actions, so step() must then be
    deterministic given the task and the actions."""

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self.kind = config.kind

    @abstractmethod
    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        """The tasks named by `env.tasks` (a count of first tasks or a list of names/seeds)."""

    @abstractmethod
    def new_environment(self) -> Environment:
        """A fresh environment for one episode."""

    def close(self) -> None:
        """Stop anything the suite started (sandbox servers ...); by default nothing."""
        return None

    def close_environment(self, env: Environment) -> None:
        """Release what one environment holds once its episode is over; by default nothing."""
        return None

    # -- optional parts: None means "not offered" ----------------------------------------

    def reflect_template(self, steps: list[dict[str, Any]]) -> tuple[str, int] | None:
        """An experience note from the steps' feedback and the depth of the step to redo
        (steps[0] is the root); None: the template reflector's generic rule is used."""
        return None

    def expert_action(self, env: Environment) -> str | None:
        """The expert's next action from `env`'s current state (the Early Experience
        baseline's expert); None: no expert here."""
        return None

    def canonical_solution(self, task: Task) -> str | None:
        """A reference answer to `task` as one action; None: the suite has none."""
        return None
