"""Datasets: JSONL files of training examples, recorded with one key, their name.

Identity, the same for every caller (the export, the baselines, the distill screen and
`python -m workbench.distill`): a name is unique within its store; the file a dataset
names is never rewritten, so an export whose examples differ from the dataset it would
replace gets a new name (`leafe-run-1-2`); files live in the store's own folder
(`store.files`), so two stores never share one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import sqlite_utils

from store.db import now
from store.records import Dataset, encode_json


def record(
    db: sqlite_utils.Database,
    *,
    run_id: int | None,
    name: str,
    path: str | Path,
    kind: str,
    n_examples: int,
    correction_ids: Iterable[int] = (),
    task_names: Iterable[str] = (),
) -> Dataset:
    """Record a written dataset file under a name no dataset of this store has."""
    dataset_id = db["datasets"].insert(
        {
            "run_id": run_id,
            "name": name,
            "path": str(Path(path).resolve()),
            "n_examples": n_examples,
            "kind": kind,
            "correction_ids": encode_json(list(correction_ids)),
            "task_names": encode_json(sorted(set(task_names))),
            "created_at": now(),
        }
    ).last_pk
    return get(db, dataset_id)


def get(db: sqlite_utils.Database, dataset_id: int) -> Dataset:
    return Dataset.from_row(db["datasets"].get(dataset_id))


def by_name(db: sqlite_utils.Database, name: str) -> Dataset | None:
    rows = list(db.query("select * from datasets where name = ? order by id desc limit 1", [name]))
    return Dataset.from_row(rows[0]) if rows else None


def by_path(db: sqlite_utils.Database, path: str | Path) -> Dataset | None:
    """The (latest) dataset recorded at this file."""
    rows = list(db.query(
        "select * from datasets where path = ? order by id desc limit 1", [str(Path(path).resolve())]
    ))
    return Dataset.from_row(rows[0]) if rows else None


def latest(
    db: sqlite_utils.Database, *, run_id: int | None = None, exclude_kinds: Iterable[str] = ()
) -> Dataset | None:
    """The newest dataset (of `run_id`, when given) whose kind is not excluded."""
    where, params = ["1"], []
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    exclude = list(exclude_kinds)
    if exclude:
        where.append(f"coalesce(kind, '') not in ({','.join('?' * len(exclude))})")
        params += exclude
    rows = list(db.query(f"select * from datasets where {' and '.join(where)} order by id desc limit 1", params))
    return Dataset.from_row(rows[0]) if rows else None


def of_run(db: sqlite_utils.Database, run_id: int) -> list[Dataset]:
    return [Dataset.from_row(row) for row in db.query("select * from datasets where run_id = ? order by id", [run_id])]


def versions(db: sqlite_utils.Database, base: str) -> list[Dataset]:
    """The datasets named `base` or `base-N` (its re-exports), newest first."""
    pattern = re.compile(rf"{re.escape(base)}(-\d+)?")
    rows = db.query("select * from datasets where name = ? or name like ? order by id desc", [base, f"{base}-%"])
    return [Dataset.from_row(row) for row in rows if pattern.fullmatch(row["name"])]


def name_taken(db: sqlite_utils.Database, name: str) -> bool:
    return db.execute("select 1 from datasets where name = ?", [name]).fetchone() is not None


def names_after(base: str) -> Iterable[str]:
    """`base`, then the names its re-exports get: `base-2`, `base-3` ..."""
    yield base
    number = 2
    while True:
        yield f"{base}-{number}"
        number += 1
