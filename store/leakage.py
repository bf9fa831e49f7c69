"""The leakage check, as pure text: a correction whose trained actions copy a run of
consecutive words from its experience note is not training data, because a model trained
on it would learn to expect the note (DESIGN.md, "Corrections").

It reads no store and imports nothing of the project, so the store (a person's decisions
in `store.curation`), the curate stage and the export all apply this one check.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+")
DEFAULT_LEAKAGE_WORDS = 8


def words(text: str) -> list[str]:
    return [word.lower() for word in WORD.findall(text or "")]


def copied_run(note: str, action: str, length: int) -> str | None:
    """The first run of `length` consecutive note words that also appears in the action."""
    note_words, action_words = words(note), words(action)
    if len(note_words) < length or len(action_words) < length:
        return None
    action_runs = {tuple(action_words[i : i + length]) for i in range(len(action_words) - length + 1)}
    for i in range(len(note_words) - length + 1):
        run = tuple(note_words[i : i + length])
        if run in action_runs:
            return " ".join(run)
    return None


def leakage_reason(note: str, actions: list[str], length: int) -> str | None:
    """Why these actions leak the note, or None when they do not."""
    for action in actions:
        run = copied_run(note, action, length)
        if run:
            return f"leakage: the action copies {length}+ words of the note ('{run}')"
    return None
