"""Where an adapter may be saved, and the card that says whose it is.

Saving replaces an adapter's folder whole (atomically), so the folder is checked first: a
name is unique within its store, and only a missing or empty folder may be written (or the
one this store saved an adapter of this name to and never recorded). The card
(`leafe-adapter.json`) beside the weights says which store saved the folder, and for what.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import sqlite_utils

from store import adapters, files
from workbench.config import DistillConfig
from workbench.distill.adapters import CARD_FILE, is_adapter_folder
from workbench.errors import LeafeError


def default_output(db: sqlite_utils.Database, name: str) -> Path:
    """`adapters/<name>` in the store's own folder (`store.files`)."""
    return files.adapter_folder(db, name)


def check_name_free(db: sqlite_utils.Database, name: str, output: Path) -> None:
    taken = adapters.by_name(db, name)
    if taken is not None:
        raise LeafeError(
            f"distill: an adapter named {name!r} already exists (adapter {taken.id}, run {taken.run_id}); "
            "choose another [distill] name"
        )
    taken = adapters.by_path(db, str(output))
    if taken is not None:
        raise LeafeError(f"distill: folder {output} already holds adapter {taken.name!r}; choose another output")


def check_output_folder(output: str, *, store_file: Path | None = None, name: str = "") -> Path:
    """The adapter's folder, refused when writing there would destroy something.

    Saving replaces the folder whole (atomically): right for a folder nobody uses yet,
    disastrous for a folder of the user's (an empty `output` used to resolve to the working
    directory) or another adapter (of this store or another one). So only a missing or
    empty folder may be written, or the folder an adapter (LoRA or full fine-tune) of this
    name was saved to by this store and never recorded (a run killed between saving and
    recording: its card says so)."""
    if not output.strip():
        raise LeafeError("distill: the adapter needs an output folder ([distill] output)")
    path = Path(output).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise LeafeError(f"distill: output {path} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()):
        if not is_adapter_folder(path):
            raise LeafeError(
                f"distill: output folder {path} holds files that are not an adapter; "
                "choose a new or empty folder for [distill] output"
            )
        if store_file is None or card_of(path) != {"store": str(store_file), "name": name}:
            raise LeafeError(
                f"distill: output folder {path} holds an adapter already, and an adapter is never "
                "overwritten; choose a new or empty folder for [distill] output (or another [distill] name)"
            )
    return path


def card_of(folder: Path) -> dict[str, str]:
    """The store and name an adapter folder's card says it was saved for."""
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {"store": str(card.get("store", "")), "name": str(card.get("name", ""))} if isinstance(card, dict) else {}


def adapter_output(db: sqlite_utils.Database, name: str, output: str = "") -> Path:
    """Where the adapter `name` may be saved: `output`, else its folder in the store's
    folder; refused (nothing written) when the name is taken or the folder is not free."""
    if not name:
        raise LeafeError("distill: the adapter needs a name")
    path = check_output_folder(output or str(default_output(db, name)), store_file=files.store_path(db), name=name)
    check_name_free(db, name, path)
    return path


def write_card(
    folder: Path, db: sqlite_utils.Database, *, name: str, kind: str, dataset_path: str, settings: DistillConfig
) -> None:
    """A small JSON beside the weights, so a copied adapter folder still says what it is,
    and which store saved it (only that store may replace it, and only before recording it)."""
    card = {"name": name, "kind": kind, "method": settings.method, "dataset": str(dataset_path),
            "distill": dataclasses.asdict(settings), "store": str(files.store_path(db))}
    (folder / CARD_FILE).write_text(json.dumps(card, indent=1, sort_keys=True))
