"""Adapters and datasets as a user names them: find an adapter by name or folder, a
dataset by name or file, and what an adapter was trained on; record a trained adapter
with its lineage.

An "adapter" is what a training stage produced: a LoRA adapter folder (PEFT's
`adapter_config.json`), or with `distill.method = "full"` a whole fine-tuned model folder
(`config.json` beside the card `leafe-adapter.json` saying `"method": "full"`). Both are
stored, named and evaluated the same way; only loading differs (see models/hf.py).

No torch here: the TUI and the config checks call these without loading a model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import sqlite_utils

from store import adapters, datasets
from store.db import transaction
from store.records import Adapter, Dataset
from workbench.config import DistillConfig, ModelConfig
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


def without_prefix(name_or_path: str) -> str:
    text = name_or_path.strip()
    return text[len(ADAPTER_PREFIX):] if text.startswith(ADAPTER_PREFIX) else text


def resolve_adapter(db: sqlite_utils.Database | None, name_or_path: str) -> str:
    """The folder of an adapter named in the store, or given as a folder; a clear error
    naming what was tried otherwise. An `adapter:` prefix (as in evaluate.policies) is
    accepted."""
    text = without_prefix(name_or_path)
    if not text:
        raise ModelNotFoundError("adapter: empty name")
    adapter = adapters.by_name(db, text) if db is not None else None
    if adapter is not None:
        if not is_adapter_folder(adapter.path):
            raise ModelNotFoundError(
                f"adapter {text!r} is recorded at {adapter.path}, but that folder has no adapter_config.json "
                "(nor a full fine-tune's weights)"
            )
        return str(adapter.path)
    if is_adapter_folder(Path(text).expanduser()):
        return str(Path(text).expanduser().resolve())
    known = adapters.recent_names(db) if db is not None else []
    hint = f" (adapters in the store: {', '.join(known)})" if known else " (the store has no adapters yet)"
    raise ModelNotFoundError(
        f"adapter {text!r}: not an adapter name in the store and not a folder with adapter_config.json{hint}"
    )


def adapter_row_for(db: sqlite_utils.Database, name_or_path: str) -> Adapter | None:
    """The store's adapter given by name or by its folder, if it has one."""
    text = without_prefix(name_or_path)
    return adapters.by_name(db, text) or adapters.by_path(db, str(Path(text).expanduser().resolve()))


def training_task_names(db: sqlite_utils.Database, name_or_path: str) -> set[str]:
    """Tasks an adapter was trained on (its dataset's task names, or the lineage's)."""
    adapter = adapter_row_for(db, name_or_path)
    if adapter is None:
        return set()
    names = set(adapter.lineage.get("task_names") or [])
    dataset_id = adapter.dataset_id or adapter.lineage.get("dataset_id")
    if dataset_id:
        names |= set(datasets.get(db, dataset_id).task_names)
    return names


def find_dataset(
    db: sqlite_utils.Database, name_or_path: str, *, run_id: int | None, exclude_kinds: tuple[str, ...] = ()
) -> tuple[str, Dataset | None]:
    """(file path, the store's dataset or None) for a dataset name in the store or a JSONL
    path; empty means the run's latest dataset whose kind is not excluded."""
    if not name_or_path:
        dataset = datasets.latest(db, run_id=run_id, exclude_kinds=exclude_kinds)
        if dataset is None:
            raise LeafeError(
                f"distill: run {run_id} has no exported dataset; run the export stage first "
                "or set [distill] dataset to a dataset name or a JSONL file"
            )
        return dataset.path, dataset
    dataset = datasets.by_name(db, name_or_path)
    if dataset is not None:
        return dataset.path, dataset
    if Path(name_or_path).expanduser().is_file():
        path = str(Path(name_or_path).expanduser().resolve())
        return path, datasets.by_path(db, path)
    raise LeafeError(f"distill: dataset {name_or_path!r} is neither a dataset name in the store nor a file")


def record_adapter(
    db: sqlite_utils.Database,
    *,
    name: str,
    path: Path,
    model: ModelConfig,
    dataset_path: str,
    dataset_id: int | None,
    kind: str,
    run_id: int | None,
    metrics: dict[str, Any],
    examples: list[dict[str, Any]],
    settings: DistillConfig,
    curve: list[dict[str, float]],
    extra_lineage: dict[str, Any] | None = None,
) -> int:
    """Insert an adapter row with its lineage and its loss curve, in one transaction."""
    dataset = datasets.get(db, dataset_id) if dataset_id else None
    task_names = sorted({e["task"] for e in examples if e.get("task")})
    correction_ids = (
        dataset.correction_ids if dataset is not None else
        sorted({e["correction_id"] for e in examples if e.get("correction_id") is not None})
    )
    lineage = {
        "run_id": run_id,
        "dataset_id": dataset_id,
        "dataset_path": str(dataset_path),
        "dataset_name": dataset.name if dataset is not None else None,
        "correction_ids": correction_ids,
        "task_names": task_names,
        "kinds": sorted({e["kind"] for e in examples}),
        "base_model": model.name,
        "distill": dataclasses.asdict(settings),
        **(extra_lineage or {}),
    }
    with transaction(db):
        return adapters.record(
            db, run_id=run_id, name=name, path=path, base_model=model.name, dataset_id=dataset_id,
            kind=kind, metrics=metrics, lineage=lineage, curve=curve,
        )
