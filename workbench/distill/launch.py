"""The batch command under `accelerate launch` with several processes.

Only distillation is data-parallel: exploration, reflection, backtracking and the rest
drive one store and one model through one process, and every rank running them would
start a run of its own. So a launch of several processes may run `stages = ["distill"]`
only, and anything else is refused in one line (exit 2) pointing to the way that works.

For a distill-only launch the main process runs the pipeline as usual (one run, one
adapter, the summary); when its distill stage has settled what to train, it sends that
plan (`workbench.distill.plan`) to the other processes, which train alongside it and write
nothing. If the main process ends without training (a finished run, an error), it sends
"nothing" instead (`release_followers`), so no process waits for ever.

The command line loads the config once and asks `follows_main` which part this process
plays; nothing here calls back into it.
"""

from __future__ import annotations

from workbench.config import Config
from workbench.distill import plan as distill_plan
from workbench.errors import LeafeError

PARALLEL_STAGES = ("distill",)


def check_stages_for_launch(stages: list[str], processes: int) -> None:
    """Refuse a launch of several processes whose stages are not all data-parallel."""
    others = [stage for stage in stages if stage not in PARALLEL_STAGES]
    if others:
        raise LeafeError(
            f"--batch under {processes} processes runs only stages = [\"distill\"], not {', '.join(others)}: "
            "run the other stages in one process (leafe-tui --batch CONFIG.toml), then train on several with "
            "`accelerate launch -m workbench.distill CONFIG.toml --db STORE --dataset NAME`"
        )


def follows_main(config: Config) -> bool:
    """True in a process of a launch that is not the main one: it trains the main
    process's plan (`follow_distill`) instead of running the stages. Refuses a launch of
    several processes whose stages are not all data-parallel."""
    processes = distill_plan.launched_processes()
    if processes <= 1:
        return False
    check_stages_for_launch(list(config.stages.run), processes)
    from workbench.distill.stage import is_main_process

    return not is_main_process(config.model)  # also joins the launch's process group


def release_followers() -> None:
    """The main process, when it is done: the other processes stop waiting if its distill
    stage sent them no plan."""
    if distill_plan.launched_processes() > 1 and not distill_plan.sent():
        distill_plan.exchange(None)


def follow_distill(config: Config) -> int:
    """A non-main process: train with the main process when it says what, else just end.
    Errors are the main process's to report (it meets the same ones), so exit quietly."""
    plan = distill_plan.exchange(None)
    if plan is None:
        return 0
    from store.db import open_store
    from workbench.distill.stage import train_adapter

    db = open_store(config.store.path, migrate=False)
    try:
        train_adapter(db, **plan.arguments())
    except LeafeError:
        pass
    finally:
        db.close()
    return 0
