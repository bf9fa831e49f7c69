"""The template reflector's note for ScienceWorld, from the steps' score history.

In order of what hurts most: a command that failed the task (the score fell below 0,
usually by focusing on the wrong thing), a command the simulator did not understand, and
otherwise the point where the score stopped rising. The note says what happened in the
simulator's terms and never writes the commands that would solve the task.
"""

from __future__ import annotations

from typing import Any

FORMS = "look around, go to ROOM, open door to ROOM, pick up OBJECT, focus on OBJECT"


def reflect_template(steps: list[dict[str, Any]]) -> tuple[str, int]:
    """(note, depth of the step to redo); steps[0] is the root."""
    taken = [step for step in steps[1:] if isinstance(step.get("feedback"), dict)]
    if not taken:
        return "No command was tried. Start with `look around` and read the task.", 1
    for step in taken:
        if step["feedback"].get("failed"):
            return (
                f"Step {step['depth']} ({quoted(step)}) failed the task: ScienceWorld's score fell below 0. "
                "Focusing on something the task does not name ends it; re-read the task and focus only "
                "on what it asks for, once you have found it."
            ), step["depth"]
    for step in taken:
        feedback = step["feedback"]
        if not feedback.get("understood", True):
            return (
                f"Step {step['depth']} ({quoted(step)}) was not a command ScienceWorld understands. "
                f"Type one command in its own words, such as: {FORMS}."
            ), step["depth"]
    rising = [step for step in taken if float(step["feedback"].get("score_change") or 0) > 0]
    if not rising:
        first = taken[0]
        return (
            f"No command raised the score (still {float(first['feedback'].get('score') or 0):.2f}). "
            "Read the task again and go where its objects are: open doors, go to rooms, look around."
        ), first["depth"]
    last = rising[-1]
    after = next((step for step in taken if step["depth"] > last["depth"]), None)
    score = float(last["feedback"].get("score") or 0)
    if after is None:
        return (
            f"Step {last['depth']} ({quoted(last)}) raised the score to {score:.2f}, then the budget ran out. "
            "Reach that point in fewer commands."
        ), max(1, taken[0]["depth"])
    return (
        f"The score rose to {score:.2f} at step {last['depth']} ({quoted(last)}) and did not rise after it. "
        "Try a different command from there: the task's next part."
    ), after["depth"]


def quoted(step: dict[str, Any]) -> str:
    action = str(step["feedback"].get("action") or step.get("action") or "")
    return repr(" ".join(action.split())[:80])
