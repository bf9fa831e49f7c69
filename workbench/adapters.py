"""Adapters and datasets in the store: find an adapter by name or folder, read its lineage.

An "adapter" is what a training stage produced: a LoRA adapter folder (PEFT's
`adapter_config.json`), or with `distill.method = "full"` a whole fine-tuned model folder
(`config.json` beside the card `leafe-adapter.json` saying `"method": "full"`). Both are
stored, named and evaluated the same way; only loading differs (see models/hf.py).

No torch here: the TUI and the config checks call these without loading a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlite_utils

from store import queries
from workbench.errors import LeafeError, ModelNotFoundError

ADAPTER_PREFIX = "adapter:"
CARD_FILE = "leafe-adapter.json"


def is_lora_folder(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def is_full_model_folder(path: str | Path) -> bool:
    """A whole model written by a full fine-tune (its card says so), not any model folder:
    a user's own checkpoint is a `[model] name`, not an adapter."""
    folder = Path(path)
    if not (folder / "config.json").is_file() or not (folder / CARD_FILE).is_file():
        return False
    try:
        return json.loads((folder / CARD_FILE).read_text()).get("method") == "full"
    except (ValueError, OSError, AttributeError):
        return False


def is_adapter_folder(path: str | Path) -> bool:
    return is_lora_folder(path) or is_full_model_folder(path)


def adapter_by_name(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    row = db.execute("select id from adapters where name = ?", [name]).fetchone()
    return adapter_row(db, row[0]) if row else None


def adapter_row(db: sqlite_utils.Database, adapter_id: int) -> dict[str, Any]:
    row = dict(db["adapters"].get(adapter_id))
    row["metrics"] = queries.loads(row["metrics"], {})
    row["lineage"] = queries.loads(row["lineage"], {})
    return row


def resolve_adapter(db: sqlite_utils.Database | None, name_or_path: str) -> str:
    """The folder of an adapter named in the store, or given as a folder; a clear error
    naming what was tried otherwise. An `adapter:` prefix (as in evaluate.policies) is
    accepted."""
    text = name_or_path.strip()
    if text.startswith(ADAPTER_PREFIX):
        text = text[len(ADAPTER_PREFIX):]
    if not text:
        raise ModelNotFoundError("adapter: empty name")
    if db is not None and "adapters" in db.table_names():
        row = adapter_by_name(db, text)
        if row is not None:
            if not is_adapter_folder(row["path"]):
                raise ModelNotFoundError(
                    f"adapter {text!r} is recorded at {row['path']}, but that folder has no adapter_config.json "
                    "(nor a full fine-tune's weights)"
                )
            return str(row["path"])
    if is_adapter_folder(Path(text).expanduser()):
        return str(Path(text).expanduser().resolve())
    known = []
    if db is not None and "adapters" in db.table_names():
        known = [r[0] for r in db.execute("select name from adapters order by id desc limit 8").fetchall()]
    hint = f" (adapters in the store: {', '.join(known)})" if known else " (the store has no adapters yet)"
    raise ModelNotFoundError(
        f"adapter {text!r}: not an adapter name in the store and not a folder with adapter_config.json{hint}"
    )


def adapter_row_for(db: sqlite_utils.Database, name_or_path: str) -> dict[str, Any] | None:
    """The store's row for an adapter given by name or by its folder, if it has one."""
    text = name_or_path[len(ADAPTER_PREFIX):] if name_or_path.startswith(ADAPTER_PREFIX) else name_or_path
    row = adapter_by_name(db, text)
    if row is not None:
        return row
    folder = str(Path(text).expanduser().resolve())
    hit = db.execute("select id from adapters where path = ?", [folder]).fetchone()
    return adapter_row(db, hit[0]) if hit else None


def training_task_names(db: sqlite_utils.Database, name_or_path: str) -> set[str]:
    """Tasks an adapter was trained on (its dataset's task names, or the lineage's)."""
    row = adapter_row_for(db, name_or_path)
    if row is None:
        return set()
    names = set(row["lineage"].get("task_names") or [])
    dataset_id = row.get("dataset_id") or row["lineage"].get("dataset_id")
    if dataset_id:
        dataset = db.execute("select task_names from datasets where id = ?", [dataset_id]).fetchone()
        if dataset:
            names |= set(queries.loads(dataset[0], []) or [])
    return names


def dataset_row(db: sqlite_utils.Database, dataset_id: int) -> dict[str, Any]:
    row = dict(db["datasets"].get(dataset_id))
    row["correction_ids"] = queries.loads(row["correction_ids"], []) or []
    row["task_names"] = queries.loads(row["task_names"], []) or []
    return row


def find_dataset(
    db: sqlite_utils.Database, name_or_path: str, *, run_id: int | None, exclude_kinds: tuple[str, ...] = ()
) -> tuple[str, int | None]:
    """(file path, dataset id or None) for a dataset name in the store or a JSONL path;
    empty means the run's latest dataset whose kind is not excluded."""
    if not name_or_path:
        marks = ",".join("?" * len(exclude_kinds))
        where = f"and coalesce(kind, '') not in ({marks})" if exclude_kinds else ""
        row = db.execute(
            f"select id, path from datasets where run_id = ? {where} order by id desc limit 1",
            [run_id, *exclude_kinds],
        ).fetchone()
        if row is None:
            raise LeafeError(
                f"distill: run {run_id} has no exported dataset; run the export stage first "
                "or set [distill] dataset to a dataset name or a JSONL file"
            )
        return row[1], row[0]
    row = db.execute(
        "select id, path from datasets where name = ? order by id desc limit 1", [name_or_path]
    ).fetchone()
    if row is not None:
        return row[1], row[0]
    if Path(name_or_path).expanduser().is_file():
        path = str(Path(name_or_path).expanduser().resolve())
        hit = db.execute("select id from datasets where path = ? order by id desc limit 1", [path]).fetchone()
        return path, hit[0] if hit else None
    raise LeafeError(f"distill: dataset {name_or_path!r} is neither a dataset name in the store nor a file")


def store_folder(db: sqlite_utils.Database) -> Path:
    """The folder the store file lives in (adapters and datasets default to beside it)."""
    for row in db.execute("PRAGMA database_list").fetchall():
        if row[1] == "main" and row[2]:
            return Path(row[2]).resolve().parent
    return Path.cwd()
