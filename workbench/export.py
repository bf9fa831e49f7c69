"""Stage 5a, export: approved and edited corrections as a chat-format JSONL training set.

Each example is the history up to the replaced step *without the note*, then the corrected
action as the assistant turn (the edited one where a person edited it): the paper's
counterfactual pair. With `[export] continuation`, the branch's later actions are taught
too. `target_start` marks the first assistant message trained on; earlier turns are
context. With `[export] rehearsal = true`, successful original episodes
join as `rehearsal` examples (weighted by `distill.beta`). The file is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils

from store import corrections, datasets, episodes, files, steps
from store.db import transaction
from store.leakage import leakage_reason
from store.records import Correction, Dataset
from workbench.config import Config
from workbench.context import StageContext
from workbench.errors import LeafeError
from workbench.files import atomic_write_text, refuse_protected
from workbench.prompts import action_chats


def up_to_best_score(path: Sequence[Any], first_depth: int) -> list[Any]:
    """`path` cut after the first step from `first_depth` on with the branch's best score."""
    best = max(range(first_depth, len(path)), key=lambda index: (path[index].score or 0.0, -index))
    return list(path[: best + 1])


def correction_examples(db: sqlite_utils.Database, config: Config, correction: Correction) -> list[dict]:
    """The corrected action after the note-free history up to tau; with `[export]
    continuation`, also the branch's later actions (up to its best score, with
    `end_at_best`), each after its own history."""
    tau_depth = steps.get(db, correction.tau_node_id).depth
    path = steps.path_to(db, correction.leaf_node_id)
    if not config.export.continuation:
        path = path[: tau_depth + 1]
    elif config.export.end_at_best:
        path = up_to_best_score(path, tau_depth)
    edited = correction.status == "edited" and correction.edited_action
    # A person's edit is taught as written, whatever [export] targets says.
    target = "text" if edited else config.export.targets
    chats = action_chats(config.prompts, path, config.env.max_steps, first_depth=tau_depth, target=target)
    if edited and path[tau_depth].action != correction.edited_action:
        # The continuation answered the original branch action, not the edited one (an edit
        # kept before edits were played from tau); an edit played from tau keeps its own.
        messages, start = chats[0]
        chats = [([*messages[:start], {"role": "assistant", "content": correction.edited_action}], start)]
    return [
        {"messages": messages, "kind": "correction", "target_start": start,
         "task": correction.task, "correction_id": correction.id}
        for messages, start in chats
    ]


def rehearsal_examples(db: sqlite_utils.Database, config: Config, run_id: int) -> Iterator[dict]:
    for episode in episodes.of_run(db, run_id, "explore", success=True):
        path = steps.original_path(db, episode.id)
        for messages, start in action_chats(config.prompts, path, config.env.max_steps, target=config.export.targets):
            yield {"messages": messages, "kind": "rehearsal", "target_start": start,
                   "task": episode.task, "correction_id": None}


def jsonl(examples: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(example, ensure_ascii=False) + "\n" for example in examples)


def holds(path: Path, text: str) -> bool:
    """Whether the file at `path` holds exactly `text`."""
    try:
        return path.is_file() and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def free_dataset_file(db: sqlite_utils.Database, run_id: int | None, base: str, text: str) -> tuple[str, Path]:
    """The first of `base`, `base-2` ... that no dataset is named, with its file in the
    store's folder. A file there without a row is what a run killed between writing and
    recording left: the same examples may take it, different ones may not."""
    for name in datasets.names_after(base):
        target = files.dataset_file(db, run_id, name)
        if not datasets.name_taken(db, name) and (not target.exists() or holds(target, text)):
            return name, target
    raise AssertionError("unreachable: names_after never ends")


def save_dataset(
    db: sqlite_utils.Database,
    *,
    run_id: int | None,
    kind: str,
    name: str,
    examples: Sequence[dict[str, Any]],
    path: str | Path | None = None,
    correction_ids: Iterable[int] = (),
) -> Dataset:
    """Write `examples` as a JSONL dataset and record it: the one way a dataset enters a
    store (the export, the baselines, the distill screen).

    A dataset's file is never rewritten. When the newest dataset named `name` (or one of
    its re-exports, `name-2` ...) holds exactly these examples, it is that dataset, and
    nothing is written (a resumed stage does not duplicate it); otherwise the examples go
    under the first free name, each in its own file in the store's folder. A `path` the
    user chose is written only if no file is there yet (or the same examples are).
    """
    text = jsonl(examples)
    newest = next(iter(datasets.versions(db, name)), None)
    same_place = newest is not None and (path is None or Path(path).resolve() == Path(newest.path))
    if same_place and holds(Path(newest.path), text):
        return newest
    if path:
        target = Path(path).resolve()
        refuse_protected(target)  # the run's inputs: a refusal that names what the file is
        taken = datasets.by_path(db, target)
        if taken is not None or (target.exists() and not holds(target, text)):
            owner = f"dataset {taken.name!r}'s file" if taken else "a file already"
            raise LeafeError(
                f"export: {target} is {owner}, and a dataset file is never rewritten; choose another "
                "[export] path, or leave it empty for the store's own folder"
            )
        name = next(n for n in datasets.names_after(name) if not datasets.name_taken(db, n))
    else:
        name, target = free_dataset_file(db, run_id, name, text)
    if not holds(target, text):
        atomic_write_text(target, text)
    with transaction(db):
        return datasets.record(
            db, run_id=run_id, name=name, path=target, kind=kind, n_examples=len(examples),
            correction_ids=correction_ids, task_names=(e["task"] for e in examples if e.get("task")),
        )


class Exported(NamedTuple):
    dataset: Dataset
    leaking: list[int]
    """Trainable corrections left out because they fail the leakage check."""
    taught_nothing: list[int]
    """Exported corrections that gave no example: with `[export] targets = "action"`, the
    environment read no action in the steps they would train."""


def export_dataset(
    db: sqlite_utils.Database,
    config: Config,
    run_id: int,
    *,
    path: str | Path | None = None,
    name: str | None = None,
    rehearsal: bool | None = None,
    correction_ids: list[int] | None = None,
) -> Exported:
    """Write the run's trainable corrections (or just `correction_ids`) as JSONL and record
    the dataset (see `save_dataset`). The TUI's distill screen calls this too."""
    chosen = corrections.trainable(db, run_id)
    if correction_ids is not None:
        wanted = set(correction_ids)
        chosen = [c for c in chosen if c.id in wanted]
    # The last guard of the leakage check: whatever approved a correction (a store from an
    # older version, a decision written by hand), one that copies its note is never written.
    words = config.curate.leakage_words
    leaking = [c.id for c in chosen
               if leakage_reason(c.note, corrections.trained_actions(db, c, c.status), words)]
    chosen = [c for c in chosen if c.id not in leaking]
    taught = {c.id: correction_examples(db, config, c) for c in chosen}
    examples = [example for c in chosen for example in taught[c.id]]
    if config.export.rehearsal if rehearsal is None else rehearsal:
        examples += list(rehearsal_examples(db, config, run_id))
    dataset = save_dataset(
        db, run_id=run_id, kind="leafe", name=name or config.export.name or f"leafe-run-{run_id}",
        examples=examples, path=path or config.export.path or None, correction_ids=[c.id for c in chosen],
    )
    return Exported(dataset, leaking, [correction_id for correction_id, chats in taught.items() if not chats])


def run_export(context: StageContext) -> dict:
    dataset, leaking, silent = export_dataset(context.db, context.config, context.run_id)
    summary = {"dataset": dataset.name, "path": dataset.path, "examples": dataset.n_examples,
               "corrections": len(dataset.correction_ids)}
    if leaking:
        context.say(
            f"warning: export left out corrections {leaking}: their actions copy "
            f"{context.config.curate.leakage_words}+ words of their notes"
        )
        summary["leaking_left_out"] = leaking
    # Say so, or "2 corrections, 0 examples" reads as a fault.
    if silent:
        context.say(
            f"warning: export: corrections {silent} teach nothing: the environment read no action "
            f'in the steps they would train, and [export] targets = "action" trains only actions it read'
        )
        summary["taught_nothing"] = silent
    return summary
