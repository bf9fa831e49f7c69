"""Stage 5a, export: approved and edited corrections as a chat-format JSONL training set.

Each example is the history up to the replaced step *without the note*, then the corrected
action as the assistant turn (the edited one where a person edited it), then the corrected
continuation as later turns. `target_start` marks the first assistant message trained on;
earlier turns are context. With `[export] rehearsal = true`, successful original episodes
join as `rehearsal` examples (weighted by `distill.beta`). The file is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from store import queries
from store.curation import TRAINABLE
from store.db import now, transaction
from workbench.agent import action_chats
from workbench.config import Config
from workbench.context import StageContext
from workbench.files import atomic_write_jsonl
from workbench.leakage import leakage_reason, trained_actions


def store_folder(db: sqlite_utils.Database) -> Path:
    path = db.execute("PRAGMA database_list").fetchone()[2]
    return Path(path).parent if path else Path.cwd()


def correction_examples(db: sqlite_utils.Database, config: Config, correction: dict) -> list[dict]:
    """The corrected action and its continuation, after the note-free history up to tau."""
    tau_depth = db.execute("select depth from nodes where id = ?", [correction["tau_node_id"]]).fetchone()[0]
    path = queries.path_to(db, correction["leaf_node_id"])
    chats = action_chats(config.prompts, path, config.env.max_steps, first_depth=tau_depth)
    edited = correction["status"] == "edited" and correction["edited_action"]
    if edited and path[tau_depth]["action"] != correction["edited_action"]:
        # The continuation answered the original branch action, not the edited one (an edit
        # kept before edits were played from tau); an edit played from tau keeps its own.
        messages, start = chats[0]
        chats = [([*messages[:start], {"role": "assistant", "content": correction["edited_action"]}], start)]
    return [
        {"messages": messages, "kind": "correction", "target_start": start,
         "task": correction["task"], "correction_id": correction["id"]}
        for messages, start in chats
    ]


def rehearsal_examples(db: sqlite_utils.Database, config: Config, run_id: int) -> Iterator[dict]:
    rows = db.execute(
        """select episodes.id, tasks.name from episodes join tasks on tasks.id = episodes.task_id
           where run_id = ? and purpose = 'explore' and success = 1 order by episodes.id""",
        [run_id],
    ).fetchall()
    for episode_id, task in rows:
        leaf = queries.leaf_of_original_path(db, episode_id)
        for messages, start in action_chats(config.prompts, queries.path_to(db, leaf["id"]), config.env.max_steps):
            yield {"messages": messages, "kind": "rehearsal", "target_start": start,
                   "task": task, "correction_id": None}


def trainable_corrections(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    marks = ",".join("?" * len(TRAINABLE))
    return list(
        db.query(
            f"""select corrections.*, tasks.name as task, notes.text as note from corrections
                join notes on notes.id = corrections.note_id
                join nodes leaf on leaf.id = corrections.leaf_node_id
                join episodes on episodes.id = leaf.episode_id
                join tasks on tasks.id = episodes.task_id
                where episodes.run_id = ? and corrections.status in ({marks}) order by corrections.id""",
            [run_id, *TRAINABLE],
        )
    )


def export_dataset(
    db: sqlite_utils.Database,
    config: Config,
    run_id: int,
    *,
    path: str | Path | None = None,
    name: str | None = None,
    rehearsal: bool | None = None,
    correction_ids: list[int] | None = None,
) -> dict:
    """Write the run's trainable corrections (or just `correction_ids`) as JSONL and record
    the dataset; returns its row, plus `leaking_left_out`: the ids of trainable corrections
    left out because they fail the leakage check. The TUI's distill screen calls this too."""
    corrections = trainable_corrections(db, run_id)
    if correction_ids is not None:
        wanted = set(correction_ids)
        corrections = [c for c in corrections if c["id"] in wanted]
    # The last guard of the leakage check: whatever approved a correction (a store from an
    # older version, a decision written by hand), one that copies its note is never written.
    words = config.curate.leakage_words
    leaking = [c["id"] for c in corrections
               if leakage_reason(c["note"], trained_actions(db, c, c["status"]), words)]
    corrections = [c for c in corrections if c["id"] not in leaking]
    examples = [example for c in corrections for example in correction_examples(db, config, c)]
    if config.export.rehearsal if rehearsal is None else rehearsal:
        examples += list(rehearsal_examples(db, config, run_id))
    name = name or config.export.name or f"leafe-run-{run_id}"
    path = Path(path or config.export.path or store_folder(db) / "runs" / f"run-{run_id}" / f"{name}.jsonl")
    atomic_write_jsonl(path, examples)
    row = {
        "run_id": run_id,
        "name": name,
        "path": str(path.resolve()),
        "n_examples": len(examples),
        "kind": "leafe",
        "correction_ids": json.dumps([c["id"] for c in corrections]),
        "task_names": json.dumps(sorted({e["task"] for e in examples})),
        "created_at": now(),
    }
    with transaction(db):
        existing = db.execute("select id from datasets where name = ?", [name]).fetchone()
        if existing:
            db["datasets"].update(existing[0], row)
            row["id"] = existing[0]
        else:
            row["id"] = db["datasets"].insert(row).last_pk
    return {**row, "leaking_left_out": leaking}


def run_export(context: StageContext) -> dict:
    row = export_dataset(context.db, context.config, context.run_id)
    corrections = len(json.loads(row["correction_ids"]))
    summary = {"dataset": row["name"], "path": row["path"], "examples": row["n_examples"], "corrections": corrections}
    if row["leaking_left_out"]:
        context.say(
            f"warning: export left out corrections {row['leaking_left_out']}: their actions copy "
            f"{context.config.curate.leakage_words}+ words of their notes"
        )
        summary["leaking_left_out"] = row["leaking_left_out"]
    return summary
