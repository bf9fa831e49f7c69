"""The leakage check: a correction whose trained actions copy a run of consecutive words
from its experience note is not training data, because a model trained on it would learn
to expect the note (DESIGN.md, "Corrections"). The curate stage, a person's decisions
(`store.curation`) and the export all apply this one check."""

from __future__ import annotations

import re

import sqlite_utils

from store import queries

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


def branch_actions(db: sqlite_utils.Database, tau_node_id: int, leaf_node_id: int) -> list[str]:
    """The corrected action and its continuation: the branch's steps from tau's depth on."""
    tau_depth = db.execute("select depth from nodes where id = ?", [tau_node_id]).fetchone()[0]
    return [step["action"] or "" for step in queries.path_to(db, leaf_node_id)[tau_depth:]]


def trained_actions(db: sqlite_utils.Database, correction: dict, status: str) -> list[str]:
    """The assistant turns the export writes for `correction` once it has `status`: the
    edited action alone when edited (with its continuation when the edit was played from
    tau), else the branch's actions from tau on."""
    actions = branch_actions(db, correction["tau_node_id"], correction["leaf_node_id"])
    if status == "edited" and (correction.get("edited_action") or "").strip():
        # An edit played from tau has its own continuation (its branch starts with it).
        return actions if actions[:1] == [correction["edited_action"]] else [correction["edited_action"]]
    return actions


def leakage_reason(note: str, actions: list[str], length: int) -> str | None:
    """Why these actions leak the note, or None when they do not."""
    for action in actions:
        run = copied_run(note, action, length)
        if run:
            return f"leakage: the action copies {length}+ words of the note ('{run}')"
    return None


def leakage_words_of_run(db: sqlite_utils.Database, run_id: int) -> int:
    """The run's `curate.leakage_words` (the default for a config that predates it)."""
    config = queries.get_run(db, run_id)["config"]
    return int((config.get("curate") or {}).get("leakage_words") or DEFAULT_LEAKAGE_WORDS)
