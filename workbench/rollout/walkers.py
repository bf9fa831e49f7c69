"""One live line of play (an episode's original path or one of its branches) and what it
needs to go on: its environment in the state after its latest step, its task, the text of
the notes in its context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from store import episodes, notes
from store.records import Step
from workbench.context import StageContext
from workbench.envs.base import Environment, Task, execute
from workbench.models.base import Generator


@dataclass
class Walker:
    """An episode's original path or one of its branches, advancing step by step."""

    episode_id: int
    task: Task
    env: Environment
    path: list[Step]  # root .. latest node, as stored
    branch_depth: int = 0
    pending_note: tuple[int, str] | None = None  # (note id, text) for the next action
    done: bool = False
    extra: dict = field(default_factory=dict)
    seed: int | None = None
    """The episode's own seed: each step samples from a stream seeded by it and the step's
    depth, whatever else shares the batch (evaluation); None samples with the call's seed."""
    generator: Generator | None = None
    """The policy this walker plays with, when walkers of several policies advance together;
    None plays with roll_out's generator."""

    @property
    def node_id(self) -> int:
        return self.path[-1]["id"]

    @property
    def depth(self) -> int:
        return self.path[-1]["depth"]


def remember_state(context: StageContext, node_id: int, env: Environment) -> None:
    # A suite without snapshots is rewound by replaying its actions (deterministic steps).
    if context.suite.supports_snapshot:
        context.remember_snapshot(node_id, env.snapshot())


def environment_at(context: StageContext, task: Task, path: Sequence[dict]) -> Environment:
    """A fresh environment in the state after `path[-1]`: restored from a remembered
    snapshot, else rebuilt by deterministic replay of the stored actions from the root."""
    env = context.suite.new_environment()
    env.reset(task)
    last = path[-1]["id"]
    if last in context.snapshots and context.suite.supports_snapshot:
        env.restore(context.snapshots[last])
        return env
    for step in path[1:]:
        execute(env, step["action"] or "")
    remember_state(context, last, env)
    return env


def task_of(context: StageContext, episode_id: int) -> Task:
    name, spec = episodes.task_of(context.db, episode_id)
    return Task(name=name, spec=spec)


def note_texts(context: StageContext, walkers: Sequence[Walker]) -> dict[int, str]:
    """The text of every note in the walkers' context (on their paths or pending)."""
    texts = {w.pending_note[0]: w.pending_note[1] for w in walkers if w.pending_note}
    wanted = {step["note_id"] for w in walkers for step in w.path if step.get("note_id")} - set(texts)
    return texts | notes.texts(context.db, wanted)
