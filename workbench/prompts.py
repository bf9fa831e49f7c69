"""What the policy is asked: the default prompts of the built-in environment kinds, and the
chat built from a path of steps with them (for acting, and note-free for training).

`[prompts]` in a config overrides any default; a suite declares its own as
`default_prompts` (workbench/envs/base.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.models.base import ChatPrompt, Generator

if TYPE_CHECKING:  # the config loads its defaults from here
    from workbench.config import PromptsConfig

CODING = {
    "system": (
        "You are a careful Python programmer. Answer with one complete Python function "
        "in a ```python code block."
    ),
    "first_turn": "{observation}",
    "next_turn": (
        "{observation}\nYou have {steps_left} attempt(s) left. "
        "Answer with the whole corrected function."
    ),
    "note": "{turn}\n\nA note from an earlier attempt at this point: {note}",
}

NAVIGATION = {
    "system": (
        "You move an agent through a grid world to reach the goal. Answer with exactly one "
        "action word: left, right, forward, pickup, drop, toggle or done."
    ),
    "first_turn": "{observation}\nWhich action do you take: left, right or forward?",
    # Ending on a question raised the share of answers that hold an action word.
    "next_turn": "{observation}\nSteps left: {steps_left}. Which action do you take: left, right or forward?",
    "note": "{turn}\n\nA note from an earlier attempt at this point: {note}",
}


def default_prompts(kind: str) -> dict[str, str]:
    """The prompts the suite registered as `kind` declares; the coding ones for a suite that
    declares none, a plain environment class, or a kind that cannot be found (opening the
    suite reports that in one line, before a run writes anything)."""
    from workbench.envs import suite_prompts
    from workbench.errors import LeafeError

    try:
        declared = suite_prompts(kind)
    except LeafeError:
        declared = None
    return dict(declared if declared is not None else CODING)


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
    environment names it (navigation's "left", Sokoban's move, a Gymnasium action's name,
    the code block a code submission ran), or None where it read none (a failed parse) or
    does not say (a store from before code submissions said)."""
    feedback = (step.get("feedback") if isinstance(step, dict) else getattr(step, "feedback", None)) or {}
    action = feedback.get("action_name") or feedback.get("action") or feedback.get("submitted")
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
        path = [with_action(step, action) if (action := executed_action(step)) else step for step in path]
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
