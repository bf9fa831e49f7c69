"""Sokoban's template reflection: a note from the pushes, walls and hazard of an episode,
and the step to redo. It names what happened and where the boxes and goals stood, never
the moves that solve the level."""

from __future__ import annotations

from typing import Any

PUSH_RULE = "To push a box down, stand just above it and move down (the same for every side)."


def box_lines(observation: str) -> list[str]:
    """The observation's sentences about loose boxes (`Box at row 2, column 3: ...`)."""
    return [line.strip() for line in str(observation).splitlines() if line.startswith("Box at ")]


def before(steps: list[dict[str, Any]], depth: int) -> str:
    """Where the boxes stood before step `depth`, from the observation the policy saw then."""
    lines = box_lines(steps[depth - 1]["observation"]) if depth >= 1 else []
    return f"Before step {depth}: {' '.join(lines[:2])}" if lines else ""


def counted(depths: list[int]) -> str:
    times = "once" if len(depths) == 1 else f"{len(depths)} times"
    shown = ", ".join(str(depth) for depth in depths[:4])
    return f"{times}, at step{'s' if len(depths) > 1 else ''} {shown}"


def reflect_template(steps: list[dict[str, Any]]) -> tuple[str, int]:
    """(note, rollback depth) for an episode; steps[0] is the root."""
    moves = steps[1:]
    for step in moves:
        feedback = step.get("feedback") or {}
        if feedback.get("hazard"):
            row, column = feedback.get("stuck_box") or ("?", "?")
            depth = step["depth"]
            parts = [f"Step {depth} pushed a box into the corner at row {row}, column {column}, where no goal is: "
                     "the level could not be solved after it (score 0).", before(steps, depth),
                     "Never push a box into a corner that is not a goal."]
            return " ".join(part for part in parts if part), depth
    walls = [step["depth"] for step in moves if (step.get("feedback") or {}).get("blocked_by")]
    unreadable = sum(1 for step in moves if (step.get("feedback") or {}).get("error"))
    off_goal = next((step["depth"] for previous, step in zip(steps, moves, strict=False)
                     if (step.get("feedback") or {}).get("pushed")
                     and (step["feedback"].get("boxes_on_goals") or 0)
                     < ((previous.get("feedback") or {}).get("boxes_on_goals") or 0)), None)
    pushes = sum(1 for step in moves if (step.get("feedback") or {}).get("pushed"))
    last = (moves[-1].get("feedback") or {}) if moves else {}
    parts = [f"It placed {last.get('boxes_on_goals', 0)} of {last.get('boxes', '?')} boxes on goals "
             f"in {len(moves)} steps with {pushes} push{'es' if pushes != 1 else ''}."]
    if walls:
        parts.append(f"It walked into a wall or a stuck box {counted(walls)}.")
    if unreadable:
        parts.append("One answer was not a move." if unreadable == 1 else f"{unreadable} answers were not moves.")
    if off_goal is not None:
        rollback = off_goal
        parts.append(f"Step {off_goal} pushed a box off its goal.")
    elif walls:
        rollback = walls[0]
    else:
        rollback = 1
    parts.extend([before(steps, rollback), PUSH_RULE])
    return " ".join(part for part in parts if part), rollback
