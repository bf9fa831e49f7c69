"""`python -m workbench.distill` (and `accelerate launch -m workbench.distill`): one adapter
trained from a config's [model] and [distill] sections, outside any run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from store import datasets
from store.db import now
from workbench.distill.adapters import find_dataset
from workbench.distill.output import default_output
from workbench.distill.stage import (
    BASELINE_DATASET_KINDS,
    adapter_summary,
    is_main_process,
    leafe_env_steps,
    train_adapter,
)
from workbench.errors import LeafeError


def main(argv: list[str] | None = None) -> int:
    """`accelerate launch [...] -m workbench.distill CONFIG.toml --db STORE [--dataset X]`.

    Trains one adapter from a config's [model] and [distill] sections, outside any run
    (the adapter's lineage names the dataset's run). Every process trains; rank 0 writes.
    """
    from store.db import open_store
    from workbench.config import load_config
    from workbench.progress import RichProgress

    parser = argparse.ArgumentParser(prog="python -m workbench.distill", description=main.__doc__)
    parser.add_argument("config", help="TOML config with [model] and [distill]")
    parser.add_argument("--db", help="the store (default: [store] path)")
    parser.add_argument("--dataset", help="dataset name or JSONL file (default: [distill] dataset)")
    parser.add_argument("--name", help="adapter name (default: [distill] name)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        settings = config.distill
        main_process = is_main_process(config.model)
        db = open_store(args.db or config.store.path, migrate=main_process)
        wanted = args.dataset or settings.dataset
        newest = datasets.latest(db) if not wanted else None
        run_id = newest.run_id if newest is not None else None
        dataset_path, dataset = find_dataset(db, wanted, run_id=run_id, exclude_kinds=BASELINE_DATASET_KINDS)
        dataset_id = dataset.id if dataset is not None else None
        if dataset is not None:
            run_id = dataset.run_id
        name = args.name or settings.name or f"distill-{Path(dataset_path).stem}-{now()[:19].replace(':', '')}"
        output = settings.output or str(default_output(db, name))
        progress = RichProgress() if main_process else None
        if progress:
            progress.__enter__()
        try:
            adapter_id = train_adapter(
                db, dataset_path=dataset_path, dataset_id=dataset_id, settings=settings,
                model=config.model, name=name, output=output, run_id=run_id, progress=progress,
                env_steps=leafe_env_steps(db, run_id) if run_id else None,
            )
        finally:
            if progress:
                progress.__exit__(None, None, None)
        if adapter_id:
            print(json.dumps(adapter_summary(db, adapter_id), indent=2, default=str))
        return 0
    except LeafeError as error:
        print(f"leafe-tui distill: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
