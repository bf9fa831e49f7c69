"""The agent: prompts built from a node path, model text made safe to store, and the
lock-step batched rollout engine that exploration, backtracking and evaluation share.

Lock-step: every live line of play (an episode, or a branch of one) advances together,
one batched generate call per step; each step's nodes land in one transaction, so a
killed run loses at most the step in flight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from store import episodes, notes, steps
from store.db import transaction
from store.records import Step
from workbench.config import PromptsConfig
from workbench.context import StageContext, Stopwatch
from workbench.envs.base import Environment, StepResult, Task, step_succeeded
from workbench.models.base import ChatPrompt, Completion, Generator, Sampling

MAX_ACTION_CHARS = 16_000  # an enormous answer is stored cut, and the cut is recorded


# -- prompts ------------------------------------------------------------------------


def safe_format(template: str, **values: Any) -> str:
    """str.format that leaves unknown or malformed braces alone (users write templates)."""
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        text = template
        for key, value in values.items():
            text = text.replace("{" + key + "}", str(value))
        return text


def build_messages(
    prompts: PromptsConfig,
    path: Sequence[dict],
    max_steps: int,
    notes: dict[int, str] | None = None,
    pending_note: str | None = None,
) -> ChatPrompt:
    """The chat the policy sees before acting after `path[-1]`.

    `path` runs from the root (the task) to the latest step. A node's `note_id` names the
    experience note that was in context when its action was generated; the note joins the
    user turn just before that action. `pending_note` does the same for the action about to
    be generated (a branch's first step). Pass `notes=None, pending_note=None` for the
    note-free history that training examples use.
    """
    notes = notes or {}
    root = path[0]
    turns: list[str] = [safe_format(prompts.first_turn, observation=root["observation"])]
    actions: list[str] = []
    for step in path[1:]:
        note_id = step.get("note_id")
        if note_id is not None and note_id in notes:
            turns[-1] = safe_format(prompts.note, turn=turns[-1], note=notes[note_id])
        actions.append(step["action"] or "")
        steps_left = max(0, max_steps - step["depth"])
        turns.append(safe_format(prompts.next_turn, observation=step["observation"], steps_left=steps_left))
    if pending_note:
        turns[-1] = safe_format(prompts.note, turn=turns[-1], note=pending_note)
    if 0 <= prompts.history_turns < len(turns) - 1:
        # A window over the latest turns, the same for acting and for training examples, so
        # a policy whose observation holds the whole state is not led astray by its past.
        earliest = len(turns) - 1 - prompts.history_turns
        turns, actions = turns[earliest:], actions[earliest:]
    messages: ChatPrompt = []
    if prompts.system:
        messages.append({"role": "system", "content": prompts.system})
    for index, turn in enumerate(turns):
        messages.append({"role": "user", "content": turn})
        if index < len(actions):
            messages.append({"role": "assistant", "content": actions[index]})
    return messages


def assistant_index(messages: Sequence[dict], ordinal: int) -> int:
    """Index of the `ordinal`-th assistant message (1-based)."""
    seen = 0
    for index, message in enumerate(messages):
        if message["role"] == "assistant":
            seen += 1
            if seen == ordinal:
                return index
    raise ValueError(f"no assistant message number {ordinal}")


def executed_action(step: Any) -> str | None:
    """The action the environment read from the policy's text at `step`, as the
    environment names it (navigation's "left", Sokoban's move, a Gymnasium action's name),
    or None where it read none (a failed parse) or does not say (code submissions)."""
    feedback = (step.get("feedback") if isinstance(step, dict) else getattr(step, "feedback", None)) or {}
    action = feedback.get("action_name") or feedback.get("action")
    return action if isinstance(action, str) and action else None


def with_action(step: Any, action: str) -> Any:
    return {**step, "action": action} if isinstance(step, dict) else dataclasses.replace(step, action=action)


def action_chats(
    prompts: PromptsConfig, path: Sequence[dict], max_steps: int, first_depth: int = 1, target: str = "text"
) -> list[tuple[ChatPrompt, int]]:
    """Note-free chats that teach the actions of `path` from `first_depth` on, each as
    (messages, index of the first assistant message trained on).

    With the whole history in the prompt, one chat holds them all: every action is a target
    after its own history. With a window (`prompts.history_turns`), each action gets its own
    chat: the windowed prompt the policy saw before it, then the action, so that training
    and acting see the same context.

    `target = "action"` ([export] targets) trains on the action the environment read from
    the text rather than the text itself ("left" for "So it was left."), and gives a step
    where it read none no chat of its own; "text" trains on the words as written."""
    if target == "action":
        path = [with_action(step, executed_action(step)) if executed_action(step) else step for step in path]
    if prompts.history_turns < 0:
        messages = build_messages(prompts, path, max_steps)
        if messages and messages[-1]["role"] == "user" and len(path) > 1:
            messages = messages[:-1]
        return [(messages, assistant_index(messages, first_depth))]
    chats = []
    for depth in range(first_depth, len(path)):
        if target == "action" and executed_action(path[depth]) is None:
            continue  # the environment read no action here: nothing to teach
        prompt = build_messages(prompts, path[:depth], max_steps)
        chats.append(([*prompt, {"role": "assistant", "content": path[depth]["action"] or ""}], len(prompt)))
    return chats


def fit_context(messages: ChatPrompt, generator: Generator, reserve: int) -> tuple[ChatPrompt, int]:
    """Drop the oldest (assistant, user) turn pairs until the prompt fits; keep the system
    prompt, the task and the latest turns. Returns the prompt and how many turns went."""
    limit = generator.context_length - reserve
    head = 2 if messages and messages[0]["role"] == "system" else 1
    dropped = 0
    # Stop before the last (assistant, user) pair: the latest observation always stays.
    while generator.count_tokens(messages) > limit and len(messages) > head + 2:
        messages = messages[:head] + messages[head + 2 :]
        dropped += 2
    return messages, dropped


def clean_text(text: Any) -> tuple[str, dict]:
    """Model text made storable: valid UTF-8, bounded. Returns it and what was changed."""
    notes: dict[str, Any] = {}
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
        notes["invalid_utf8"] = True
    text = str(text)
    repaired = text.encode("utf-8", errors="replace").decode("utf-8")
    if repaired != text:
        notes["invalid_utf8"] = True
        text = repaired
    text = text.replace("\x00", "")
    if len(text) > MAX_ACTION_CHARS:
        notes["action_truncated"] = len(text)
        text = text[:MAX_ACTION_CHARS]
    return text, notes


# -- walkers: one live line of play --------------------------------------------------


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
        env.step(step["action"] or "")
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


def execute(env: Environment, text: str) -> tuple[StepResult, bool]:
    """One action through the environment; an environment that raises is a failed step."""
    try:
        result = env.step(text)
        result = StepResult(*result)
        return result, step_succeeded(result)
    except Exception as error:  # the environment's bug must not end the run
        message = f"environment error: {type(error).__name__}: {error}"
        return StepResult(message, {"error": message, "success": False}, 0.0, False), False


def step_workers(context: StageContext) -> int:
    workers = context.config.env.sandbox.workers or os.cpu_count() or 2
    return max(1, workers)


# -- the engine ---------------------------------------------------------------------


StepHook = Callable[[Walker, Step], None]


def roll_out(
    context: StageContext,
    walkers: list[Walker],
    generator: Generator,
    sampling: Sampling,
    *,
    max_steps: int,
    stopwatch: Stopwatch | None = None,
    on_step: StepHook | None = None,
    on_finish: Callable[[Walker], None] | None = None,
) -> None:
    """Advance every walker in lock-step until each is done or out of budget."""
    notes_text = note_texts(context, walkers)
    live = [w for w in walkers if not w.done and w.depth < max_steps]
    for walker in walkers:
        if walker not in live and not walker.done:
            walker.done = True
            if on_finish:
                on_finish(walker)
    step = 0
    with ThreadPoolExecutor(max_workers=step_workers(context)) as pool:
        while live:
            context.check_cancelled()
            prompts, dropped = [], []
            for walker in live:
                pending = walker.pending_note[1] if walker.pending_note else None
                messages = build_messages(
                    context.config.prompts, walker.path, max_steps, notes_text, pending
                )
                messages, gone = fit_context(messages, generator, sampling.max_new_tokens)
                prompts.append(messages)
                dropped.append(gone)
            seed = None if sampling.seed is None else sampling.seed + 7919 * step
            completions = generate_step(live, prompts, generator, dataclasses.replace(sampling, seed=seed))
            actions = [clean_text(samples[0].text) for samples in completions]
            results = list(pool.map(lambda pair: execute(pair[0].env, pair[1][0]), zip(live, actions, strict=True)))
            with transaction(context.db):
                for walker, (text, cleaning), samples, (result, success), gone in zip(
                    live, actions, completions, results, dropped, strict=True
                ):
                    feedback = dict(result.feedback) | cleaning
                    if gone:
                        feedback["history_turns_dropped"] = gone
                    record = store_step(
                        context, walker, text, result, feedback, success,
                        tokens=samples[0].tokens, truncated=gone, max_steps=max_steps,
                    )
                    if stopwatch:
                        stopwatch.add_tokens(samples[0].tokens)
                    if on_step:
                        on_step(walker, record)
                    if walker.done and walker.branch_depth == 0:
                        episodes.finish(context.db, walker.episode_id)
            for walker in live:
                context.progress.event("node", node_id=walker.node_id, episode_id=walker.episode_id)
                if walker.done and on_finish:
                    on_finish(walker)
            context.progress.advance(len(live), live=sum(not w.done for w in live))
            live = [w for w in live if not w.done]
            step += 1
    if stopwatch:
        stopwatch.flush()


def step_seed(episode_seed: int, depth: int) -> int:
    """The seed of an episode's action after `depth` steps: a stable mix of both (a resumed
    or differently batched episode draws the same)."""
    digest = hashlib.blake2b(f"{episode_seed}:{depth}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def generate_step(
    live: Sequence[Walker], prompts: Sequence[ChatPrompt], generator: Generator, sampling: Sampling
) -> list[list[Completion]]:
    """One action for each live walker: one generate call per policy among them (walkers
    with a generator of their own), each walker seeded by its own seed where it has one."""
    groups: dict[int, list[int]] = {}
    policies: dict[int, Generator] = {}
    for index, walker in enumerate(live):
        own = walker.generator or generator
        groups.setdefault(id(own), []).append(index)
        policies[id(own)] = own
    completions: list[list[Completion]] = [[] for _ in live]
    for key, indices in groups.items():
        rows = [live[i] for i in indices]
        seeded = sampling
        if all(w.seed is not None for w in rows):
            seeded = dataclasses.replace(sampling, row_seeds=tuple(step_seed(w.seed, w.depth) for w in rows))  # type: ignore[arg-type]
        answers = policies[key].generate(
            [prompts[i] for i in indices], 1, seeded, tags=[w.task.name for w in rows]
        )
        for index, samples in zip(indices, answers, strict=True):
            completions[index] = samples
    return completions


def store_step(
    context: StageContext,
    walker: Walker,
    text: str,
    result: StepResult,
    feedback: dict,
    success: bool,
    *,
    tokens: int,
    truncated: int,
    max_steps: int,
) -> Step:
    """Insert one step as a child of the walker's latest node and move the walker on; the
    step is what the store kept (text it had to repair comes back repaired)."""
    depth = walker.depth + 1
    note_id = walker.pending_note[0] if walker.pending_note else None
    done = bool(result.done) or success or depth >= max_steps
    record = steps.add(
        context.db,
        episode_id=walker.episode_id,
        parent_id=walker.node_id,
        depth=depth,
        action=text,
        observation=str(result.observation),
        feedback=feedback,
        score=float(result.score),
        done=done,
        success=success,
        tokens=tokens,
        truncated_turns=truncated,
        note_id=note_id,
        branch_depth=walker.branch_depth,
    )
    walker.path = [*walker.path, record]
    walker.pending_note = None
    walker.done = done
    remember_state(context, record.id, walker.env)
    return record
