"""The `template` reflector: rules over the structured feedback, no model.

The suite writes the note where it offers a template (`Suite.reflect_template`: coding
names the exception or the first failing assert, navigation the distance and collisions);
for a suite without one, a generic rule says what the last step's feedback reported and
redoes that step. Deterministic, and the only sensible choice for a small policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from workbench.reflectors import MAX_NOTE_CHARS, Reflection, register_reflector

if TYPE_CHECKING:
    from workbench.context import StageContext


def feedback_message(feedback: dict) -> str:
    for key in ("message", "error"):
        value = feedback.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and value.get("message"):
            return f"{value.get('type', 'error')}: {value['message']}"
    return ""


def generic_template(path: Sequence[dict]) -> tuple[str, int]:
    """For environments without their own reflection: say what the last step's feedback
    reported and redo that step."""
    last = path[-1]
    message = feedback_message(last["feedback"]) or f"scored {last['score']:.2f} without solving the task"
    return f"Step {last['depth']} failed: {message[:200]}. Try a different action there.", last["depth"]


def template_reflection(context: StageContext, path: Sequence[dict]) -> Reflection:
    offered = context.suite.reflect_template(list(path))
    text, depth = offered if offered is not None else generic_template(path)
    return Reflection(text=text.strip()[:MAX_NOTE_CHARS], rollback_depth=depth, author="template")


@register_reflector("template")
def template_reflections(
    context: StageContext, paths: Sequence[Sequence[dict]], task_names: Sequence[str]
) -> list[Reflection]:
    return [template_reflection(context, path) for path in paths]
