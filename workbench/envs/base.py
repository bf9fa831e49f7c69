"""The Environment protocol every task family implements (DESIGN.md, "Environments").

An environment instance runs one episode at a time: `reset(task)` gives the first
observation, `step(action_text)` executes one action and answers with rich feedback.
`snapshot()`/`restore()` let backtracking rewind; they are optional for a user's own
environment, which is then rewound by `reset(task)` and a replay of the stored actions
from the root (so its steps must be deterministic given the task and the actions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable


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
        """The state needed to come back to this exact point (optional: see the module)."""
        ...

    def restore(self, state: Any) -> None:
        """Return to a state taken by `snapshot`."""
        ...


class TaskLoader(Protocol):
    """How a kind of environment lists its tasks: `load_tasks(suite, selection)`."""

    def __call__(self, suite: str, selection: int | list[str | int] | None) -> list[Task]: ...
