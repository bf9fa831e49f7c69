"""Adapters: trained LoRA weights in a folder, with their lineage, metrics and loss curve.

A name is unique within its store (a unique index), and a folder a row points at is never
written again; by default adapters live in the store's own folder (`store.files`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlite_utils

from store.db import now
from store.records import Adapter, encode_json


def record(
    db: sqlite_utils.Database,
    *,
    run_id: int | None,
    name: str,
    path: str | Path,
    base_model: str,
    dataset_id: int | None,
    kind: str,
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    curve: Iterable[dict[str, float]] = (),
) -> int:
    """Insert an adapter with its loss curve (one row per logged step); return its id.
    Call it inside a transaction, so the adapter and its curve land together."""
    adapter_id = db["adapters"].insert(
        {
            "run_id": run_id,
            "name": name,
            "path": str(path),
            "base_model": base_model,
            "dataset_id": dataset_id,
            "kind": kind,
            "metrics": encode_json(metrics),
            "lineage": encode_json(lineage),
            "created_at": now(),
        }
    ).last_pk
    db["train_log"].insert_all(
        {"adapter_id": adapter_id, **{key: point[key] for key in ("step", "epoch", "loss", "learning_rate")}}
        for point in curve
    )
    return adapter_id


def get(db: sqlite_utils.Database, adapter_id: int) -> Adapter:
    return Adapter.from_row(db["adapters"].get(adapter_id))


def by_name(db: sqlite_utils.Database, name: str) -> Adapter | None:
    rows = list(db.query("select * from adapters where name = ?", [name]))
    return Adapter.from_row(rows[0]) if rows else None


def by_path(db: sqlite_utils.Database, path: str | Path) -> Adapter | None:
    rows = list(db.query("select * from adapters where path = ? order by id desc limit 1", [str(path)]))
    return Adapter.from_row(rows[0]) if rows else None


def recent_names(db: sqlite_utils.Database, limit: int = 8) -> list[str]:
    return [row[0] for row in db.execute("select name from adapters order by id desc limit ?", [limit]).fetchall()]
