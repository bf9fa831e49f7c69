"""The batch command under `accelerate launch` with several processes.

Only distillation is data-parallel: exploration, reflection, backtracking and the rest
drive one store and one model through one process, and every rank running them would
start a run of its own. So a launch of several processes may run `stages = ["distill"]`
only, and anything else is refused in one line (exit 2) pointing to the way that works.

For a distill-only launch the main process runs the pipeline as usual (one run, one
adapter, the summary); when its distill stage has settled what to train, it sends that
plan to the other processes, which train alongside it and write nothing. If the main
process ends without training (a finished run, an error), it sends "nothing" instead, so
no process waits for ever.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from workbench.errors import LeafeError

# The variables accelerate itself reads for the number of processes (torchrun, MPI).
PROCESS_COUNT_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
PARALLEL_STAGES = ("distill",)

_plan_sent = False


def launched_processes() -> int:
    """How many processes this launch has (1 outside `accelerate launch` / torchrun)."""
    for name in PROCESS_COUNT_VARIABLES:
        value = os.environ.get(name, "")
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    return 1


def check_stages_for_launch(stages: list[str], processes: int) -> None:
    """Refuse a launch of several processes whose stages are not all data-parallel."""
    others = [stage for stage in stages if stage not in PARALLEL_STAGES]
    if others:
        raise LeafeError(
            f"--batch under {processes} processes runs only stages = [\"distill\"], not {', '.join(others)}: "
            "run the other stages in one process (leafe-tui --batch CONFIG.toml), then train on several with "
            "`accelerate launch -m workbench.distill CONFIG.toml --db STORE --dataset NAME`"
        )


def launched_batch(args: argparse.Namespace, run_batch: Callable[[argparse.Namespace], int]) -> int:
    """`run_batch(args)` as it is in one process; under several, see the module docstring."""
    processes = launched_processes()
    if processes <= 1 or args.dry_run:
        return run_batch(args)
    from workbench.config import load_config
    from workbench.distill import is_main_process

    config = load_config(args.batch)
    if args.db:
        config.store.path = args.db
    check_stages_for_launch(list(config.stages.run), processes)
    if not is_main_process(config.model):  # also joins the launch's process group
        return follow_distill(config.store.path)
    try:
        return run_batch(args)
    finally:
        if not _plan_sent:
            exchange_plan(None)


def exchange_plan(plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """The main process's plan, sent from it and received everywhere else."""
    global _plan_sent
    from accelerate.utils import broadcast_object_list

    box = [plan]
    broadcast_object_list(box, from_process=0)
    _plan_sent = True
    return box[0]


def send_distill_plan(plan: dict[str, Any]) -> None:
    """Called by the main process's distill stage just before it trains, under a launch."""
    if launched_processes() > 1:
        exchange_plan(plan)


def follow_distill(db_path: str) -> int:
    """A non-main process: train with the main process when it says what, else just end.
    Errors are the main process's to report (it meets the same ones), so exit quietly."""
    plan = exchange_plan(None)
    if plan is None:
        return 0
    from store.db import open_store
    from workbench.distill import train_adapter

    db = open_store(db_path, migrate=False)
    try:
        train_adapter(db, **plan)
    except LeafeError:
        pass
    finally:
        db.close()
    return 0
