"""Default prompts of the built-in environment kinds; `[prompts]` in a config overrides any
of them. A suite declares its own as `default_prompts` (workbench/envs/base.py)."""

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
