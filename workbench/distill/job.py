"""Distil from the TUI in one call: what the distill screen shows it will train on, and the
training itself (export the run's corrections under a new dataset name, or use a stored
dataset; then `train_adapter` into adapters/<name> in the store's folder).

The screen calls `planned_examples` to show the examples by kind before training, and
`distill_from_run` in its worker; neither reads a form. A dataset already in the store is
never rewritten: a fresh export takes the next free name (`leafe-run-1-2`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from store import corrections, datasets, views
from store.db import open_store
from store.leakage import leakage_reason
from store.records import Dataset
from workbench.config import Config, config_from_dict
from workbench.context import Progress
from workbench.distill import stage
from workbench.distill.output import default_output
from workbench.errors import NothingToTrain

EXAMPLE_KINDS = ("approved", "edited", "rehearsal")


@dataclass
class DistillRequest:
    """What the person chose: the data, the adapter's name and the settings they changed."""

    run_id: int | None
    dataset_id: int | None = None
    """A stored dataset to train on; None exports the run's approved and edited corrections now."""
    name: str = ""
    """The adapter's name; empty: leafe-run-<id>. A name already taken gets -2, -3 ..."""
    settings: dict[str, Any] = field(default_factory=dict)
    """[distill] fields that replace the run's (method, epochs, batch_size, learning_rate ...)."""
    rehearsal: bool | None = None
    """Add the run's successful episodes as rehearsal examples; None: the run's [export] rehearsal."""


def run_config(db: sqlite_utils.Database, run_id: int | None) -> Config:
    return config_from_dict(views.run_config(db, run_id)) if run_id is not None else Config()


def planned_examples(db: sqlite_utils.Database, run_id: int, *, rehearsal: bool) -> dict[str, int]:
    """How many examples an export of the run would hold now, by kind (approved, edited,
    rehearsal), and `left_out`: trainable corrections the leakage check keeps out."""
    from workbench.export import correction_examples, rehearsal_examples

    config = run_config(db, run_id)
    counts: Counter[str] = Counter({kind: 0 for kind in EXAMPLE_KINDS})
    counts["left_out"] = 0
    for correction in corrections.trainable(db, run_id):
        if leakage_reason(correction.note, corrections.trained_actions(db, correction, correction.status),
                          config.curate.leakage_words):
            counts["left_out"] += 1
            continue
        counts[correction.status] += len(correction_examples(db, config, correction))
    if rehearsal:
        counts["rehearsal"] = sum(1 for _ in rehearsal_examples(db, config, run_id))
    return dict(counts)


def free_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted-2`, `wanted-3` ... whichever is not taken (the store's naming
    of re-exports, `store.datasets.names_after`)."""
    return next(name for name in datasets.names_after(wanted) if name not in taken)


def export_for_training(db: sqlite_utils.Database, config: Config, run_id: int, *, rehearsal: bool | None) -> Dataset:
    """Export the run's corrections under a dataset name no stored dataset has, into a
    file of its own in the store's folder (`workbench.export.save_dataset`): an earlier
    export (and any adapter trained on it) keeps its data."""
    from workbench.export import export_dataset

    name = free_name(config.export.name or f"leafe-run-{run_id}", {row["name"] for row in views.datasets(db)})
    return export_dataset(db, config, run_id, name=name, rehearsal=rehearsal).dataset


def distill_from_run(
    db_path: str | Path,
    request: DistillRequest,
    *,
    progress: Progress,
    cancel: threading.Event,
) -> int:
    """Train the adapter `request` asks for and record it; return its id."""
    db = open_store(db_path)
    try:
        config = run_config(db, request.run_id)
        if request.dataset_id is None:
            if request.run_id is None:
                raise NothingToTrain("distill: open a run (its approved corrections) or choose a dataset")
            progress.event("message", text="exporting approved corrections")
            dataset = export_for_training(db, config, request.run_id, rehearsal=request.rehearsal)
        else:
            dataset = datasets.get(db, request.dataset_id)
        if not dataset.n_examples:
            raise NothingToTrain("distill: the dataset has no examples: approve some corrections first")
        wanted = request.name or config.distill.name or (
            f"leafe-run-{request.run_id}" if request.run_id is not None else "leafe")
        name = free_name(wanted, {row["name"] for row in views.adapters(db)})
        # adapters/<name> in the store's folder unless the run's config names a folder
        # (never the folder the app was started from).
        output = config.distill.output or str(default_output(db, name))
        return stage.train_adapter(
            db, dataset_path=dataset.path, dataset_id=dataset.id,
            settings=dataclasses.replace(config.distill, **request.settings), model=config.model,
            name=name, output=output, run_id=request.run_id, kind="leafe", progress=progress, cancel=cancel,
        )
    finally:
        db.close()
