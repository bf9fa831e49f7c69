"""The navigation template reflector: an experience note from distance and collisions.

Deterministic, so a 135M policy gets notes it could never write itself. The note says
what the feedback shows (a hazard stepped into, walls hit, steps that moved away from the
goal) and what to try from the rollback point, never a whole action sequence: a branch
must still choose.
"""

from __future__ import annotations

import re
from typing import Any

from workbench.envs.base import feedback_of
from workbench.envs.navigation.text import SYMBOLS, direction_words, hazard_words

MAX_NOTE_WORDS = 49
MAX_LISTED_STEPS = 4


def reflect_template(steps: list[dict[str, Any]]) -> tuple[str, int]:
    """(note, rollback depth) for one episode path; steps[0] is the reset node.

    The rollback step is the step into a hazard (lava) when the episode ended in one: the
    mistake that cost everything. Otherwise it is the one where the distance last got
    worse, else the first collision, else the first step after the agent last got closer
    (step 1 when it never did): the step a branch should redo, with as much of the budget
    left as possible."""
    actions = steps[1:]
    if not actions:
        return "No action was taken. Turn toward the goal, then move forward.", depth_of(steps[-1]) if steps else 0
    feedbacks = [feedback_of(step) for step in actions]
    hazards = [i for i, fb in enumerate(feedbacks) if fb.get("hazard")]
    if hazards:
        return hazard_note(steps, feedbacks, hazards[0]), depth_of(actions[hazards[0]])
    worse = [i for i, fb in enumerate(feedbacks) if got_worse(fb)]
    collisions = [i for i, fb in enumerate(feedbacks) if fb.get("collided")]
    closer = [i for i, fb in enumerate(feedbacks) if got_closer(fb)]
    stalled = min(closer[-1] + 1, len(actions) - 1) if closer else 0
    rollback = worse[-1] if worse else collisions[0] if collisions else stalled
    facts = [collision_sentence(actions, feedbacks, collisions), away_sentence(actions, feedbacks, worse),
             stalled_sentence(actions, closer) if not worse and not collisions else "",
             unreadable_sentence(feedbacks)]
    advice = advice_sentence(steps, rollback + 1, reason="worse" if worse else "collided" if collisions else "stalled")
    note = fit_words([fact for fact in facts if fact] + [advice], MAX_NOTE_WORDS)
    return note, depth_of(actions[rollback])


def hazard_note(steps: list[dict[str, Any]], feedbacks: list[dict[str, Any]], index: int) -> str:
    """The note for an episode that ended by stepping into a hazard at actions[index]."""
    hazard = str(feedbacks[index]["hazard"])
    depth = depth_of(steps[index + 1])
    fact = f"Step {depth} {hazard_words(hazard)}: the episode ended as a failure (score 0)."
    feedback = feedbacks[index]
    distance = feedback.get("previous_distance")
    where = goal_direction(steps, index + 1)
    head = f"Before step {depth}" + (f" the goal was {distance} cells away" if distance is not None else "")
    head += f" ({where})." if where else "."
    symbol = SYMBOLS.get(hazard)
    shown = f"The {hazard} ({symbol})" if symbol else f"The {hazard}"
    tip = f"{shown} was ahead: turn away and go around it, never forward into it."
    # The hazard first: when the note must be cut, it is the fact that matters most.
    facts = [sentence for sentence in (fact, unreadable_sentence(feedbacks[:index])) if sentence]
    return fit_words([*facts, f"{head} {tip}"], MAX_NOTE_WORDS)


def depth_of(step: dict[str, Any]) -> int:
    return int(step.get("depth") or 0)


def got_worse(feedback: dict[str, Any]) -> bool:
    distance, previous = feedback.get("distance"), feedback.get("previous_distance")
    return distance is not None and previous is not None and distance > previous


def got_closer(feedback: dict[str, Any]) -> bool:
    distance, previous = feedback.get("distance"), feedback.get("previous_distance")
    return distance is not None and previous is not None and distance < previous


def stalled_sentence(actions: list[dict[str, Any]], closer: list[int]) -> str:
    if not closer:
        return "It never got closer to the goal."
    if closer[-1] == len(actions) - 1:
        return ""
    return f"After step {depth_of(actions[closer[-1]])} it got no closer."


def step_list(actions: list[dict[str, Any]], indexes: list[int]) -> str:
    """`3, 5 and 7` (depths), shortened to a few with `and N more` so notes stay short."""
    numbers = [str(depth_of(actions[i])) for i in indexes]
    if len(numbers) > MAX_LISTED_STEPS:
        shown = numbers[:MAX_LISTED_STEPS - 1]
        return f"{', '.join(shown)} and {len(numbers) - len(shown)} more"
    return numbers[0] if len(numbers) == 1 else f"{', '.join(numbers[:-1])} and {numbers[-1]}"


def collision_sentence(actions: list[dict[str, Any]], feedbacks: list[dict[str, Any]],
                       collisions: list[int]) -> str:
    if not collisions:
        return ""
    kinds = {kind_of(feedbacks[i].get("blocked_by")) for i in collisions}
    what = kinds.pop() if len(kinds) == 1 else "an obstacle"
    times = "once" if len(collisions) == 1 else f"{len(collisions)} times"
    where = "step" if len(collisions) == 1 else "steps"
    return f"It hit {what} {times}, at {where} {step_list(actions, collisions)}."


def kind_of(blocked_by: Any) -> str:
    """`a locked yellow door` -> `a locked door`: the colour adds words, not meaning."""
    text = str(blocked_by or "a wall")
    for state in ("locked", "closed"):
        if state in text:
            return f"a {state} door"
    return "a wall" if "wall" in text else text


def away_sentence(actions: list[dict[str, Any]], feedbacks: list[dict[str, Any]], worse: list[int]) -> str:
    if not worse:
        return ""
    if len(worse) == 1:
        fb = feedbacks[worse[0]]
        return (f"Step {depth_of(actions[worse[0]])} moved away from the goal "
                f"({fb['previous_distance']} to {fb['distance']} cells).")
    return f"Steps {step_list(actions, worse)} moved away from the goal."


def unreadable_sentence(feedbacks: list[dict[str, Any]]) -> str:
    count = sum(1 for fb in feedbacks if fb.get("error"))
    if not count:
        return ""
    return "One answer was not an action word." if count == 1 else f"{count} answers were not action words."


def advice_sentence(steps: list[dict[str, Any]], index: int, reason: str) -> str:
    """What to try when redoing steps[index], from the state just before it."""
    feedback = feedback_of(steps[index])
    distance = feedback.get("previous_distance")
    where = goal_direction(steps, index)
    if distance is None:
        head = f"Before step {depth_of(steps[index])}"
    else:
        head = f"Before step {depth_of(steps[index])} the goal was {distance} cells away"
    head += f" ({where})." if where else "."
    blocked = kind_of(feedback.get("blocked_by")) if feedback.get("collided") else ""
    if reason == "worse":
        tip = "Turn toward the goal before moving forward."
    elif "locked" in blocked:
        tip = "Pick up the key first, then toggle the door."
    elif "closed" in blocked:
        tip = "Toggle the door to open it."
    elif reason == "collided":
        tip = "Turn before moving forward when a wall is ahead."
    else:
        tip = "Face open floor toward the goal and move forward."
    return f"{head} {tip}"


POSITION_TEXT = re.compile(r"You \(.\) are at row (\d+), column (\d+)")
GOAL_TEXT = re.compile(r"goal \(G\) is at row (\d+), column (\d+)")


def goal_direction(steps: list[dict[str, Any]], index: int) -> str:
    """`2 east and 1 south` from the agent to the goal before steps[index], if known.

    Taken from the previous step's feedback, or for the first step from the reset
    observation (the reset node carries no feedback)."""
    previous = feedback_of(steps[index - 1])
    if previous.get("position") and previous.get("goal"):
        source, target = tuple(previous["position"]), tuple(previous["goal"])
    else:
        text = str(steps[index - 1].get("observation") or "")
        agent, goal = POSITION_TEXT.search(text), GOAL_TEXT.search(text)
        if not (agent and goal):
            return ""
        source = (int(agent.group(2)), int(agent.group(1)))
        target = (int(goal.group(2)), int(goal.group(1)))
    words = direction_words(source, target)
    return f"{words} of you" if words else ""


def fit_words(sentences: list[str], limit: int) -> str:
    """Join sentences in order, within `limit` words.

    The last sentence (the advice) is kept first; facts before it follow while they fit."""
    *facts, advice = sentences
    count = len(advice.split())
    kept = []
    for sentence in facts:
        words = len(sentence.split())
        if count + words <= limit:
            kept.append(sentence)
            count += words
    return " ".join([*kept, advice])
