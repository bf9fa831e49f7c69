"""Default prompts per environment kind; `[prompts]` in a config overrides any of them."""

from __future__ import annotations

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

PROMPTS_BY_KIND = {"coding": CODING, "navigation": NAVIGATION}


def default_prompts(kind: str) -> dict[str, str]:
    """The kind's defaults; a user's own `module:Class` environment gets the coding ones
    unless the class defines a `DEFAULT_PROMPTS` dict (read when the class is loaded)."""
    return dict(PROMPTS_BY_KIND.get(kind, CODING))
