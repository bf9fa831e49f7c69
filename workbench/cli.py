"""`leafe-tui`: the TUI on a store, or `--batch CONFIG.toml` to run stages headless.

Exit codes: 0 success; 2 bad input or a store another writer kept locked (one line on
stderr; a run stopped by the lock resumes with --resume); 1 a stage failed; 130/143 when
Ctrl-C or SIGTERM stopped a run (finished steps are committed; the message says how to
resume).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import LeafeError
from workbench.visible_text import visible, visible_values

if TYPE_CHECKING:
    from workbench.config import Config

EPILOG = """\
examples:
  leafe-tui                                  open the TUI on ./leafe.db
  leafe-tui --db runs.db                     open the TUI on runs.db
  leafe-tui --batch examples/quickstart.toml run the configured stages headless
  leafe-tui --batch cfg.toml --resume        continue the latest unfinished run
  leafe-tui --batch cfg.toml --dry-run       print the config with every default
  leafe-tui --batch cfg.toml --seed 3        the same run with another sampling seed
  leafe-tui --config-help                    list every config key with its default
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="leafe-tui",
        description="A terminal workbench for teaching LLM agents to recover from their own mistakes (LEAFE).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", metavar="PATH", help="the store (SQLite); default ./leafe.db, or [store] path with --batch")
    p.add_argument("--batch", metavar="CONFIG", help="run the stages of CONFIG.toml headless instead of opening the TUI")
    p.add_argument("--resume", action="store_true", help="with --batch: continue the most recent unfinished run")
    p.add_argument("--json", action="store_true", help="with --batch: print one JSON summary object on stdout")
    p.add_argument("--dry-run", action="store_true", help="with --batch: print the resolved config and exit")
    p.add_argument("--seed", type=int, metavar="N", help="with --batch: sampling seed of the run, in place of [explore] seed")
    p.add_argument("--config-help", action="store_true", help="list every config key, its default and meaning")
    p.add_argument("--reviewer", default=os.environ.get("USER", "reviewer"), help="name recorded with your curation decisions in the TUI")
    p.add_argument("--version", action="version", version="leafe-tui 0.1.0")
    return p


def fail(message: str, code: int = 2) -> int:
    # Errors quote task names, answers and exceptions: shown, never obeyed by the terminal.
    print(f"leafe-tui: {visible(message)}", file=sys.stderr)
    return code


def say(text: str) -> None:
    """A line for the person at once (a warning before the stages start), on stderr."""
    print(f"leafe-tui: {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.config_help:
            return print_config_help()
        if args.batch:
            return run_batch(args)
        if args.resume or args.json or args.dry_run or args.seed is not None:
            return fail("--resume, --json, --dry-run and --seed need --batch CONFIG.toml")
        return run_tui(args)
    except LeafeError as error:
        return fail(str(error))


def print_config_help() -> int:
    from workbench.config import help_rows

    for key, default, text in help_rows():
        print(f"{key:34} {default[:40]:40} {text}")
    return 0


def run_tui(args: argparse.Namespace) -> int:
    import screens  # noqa: F401  first: it keeps sqlite-utils' optional pandas import out of start-up
    from store.db import check_store_file

    db_path = Path(args.db or "leafe.db")
    check_store_file(db_path)
    from screens.app import run_app

    run_app(db_path, reviewer=args.reviewer)
    return 0


def run_batch(args: argparse.Namespace) -> int:
    from workbench.config import load_config, resolved, to_toml

    config = load_config(args.batch)
    if args.db:
        config.store.path = args.db
    if args.seed is not None:
        config.explore.seed = args.seed
    if args.dry_run:
        print(to_toml(resolved(config)))
        return 0
    from workbench.distill import launch

    if launch.follows_main(config):  # a process of an `accelerate launch` other than the main one
        return launch.follow_distill(config)
    try:
        return run_stages(args, config)
    finally:
        launch.release_followers()


def run_stages(args: argparse.Namespace, config: Config) -> int:
    """The configured stages, with progress on stderr, Ctrl-C and SIGTERM handled."""
    from workbench.pipeline import run_pipeline, summary_json
    from workbench.progress import RichProgress

    cancel = threading.Event()
    stopped_by: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        cancel.set()
        if len(stopped_by) > 1:  # a second Ctrl-C means now
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Libraries print to stdout (trl's trainers log dicts there); stdout belongs to --json.
    with contextlib.redirect_stdout(sys.stderr), RichProgress() as progress:
        result = run_pipeline(
            config, db_path=config.store.path, resume=args.resume, progress=progress,
            cancel=cancel, config_path=args.batch, warn=say,
        )
    for line in result.messages:
        if line.startswith("warning"):
            print(f"leafe-tui: {visible(line)}", file=sys.stderr)
    if args.json:
        print(summary_json(result))
    elif not result.locked:
        print_summary(result, config.store.path)
    if result.locked:
        resume = shlex.join(["leafe-tui", "--batch", args.batch, "--db", str(config.store.path), "--resume"])
        return fail(f"run {result.run_id} stopped: {result.error}; resume with: {resume}")
    if result.status == "interrupted":
        print(
            f"leafe-tui: stopped; finished steps are saved in {config.store.path}. Resume with:\n"
            f"  leafe-tui --batch {args.batch} --db {config.store.path} --resume",
            file=sys.stderr,
        )
        return 143 if stopped_by and stopped_by[0] == signal.SIGTERM else 130
    if result.status == "failed":
        return fail(f"run {result.run_id} failed: {result.error}", 1)
    return 0


def print_summary(result, db_path: str | Path = "leafe.db") -> None:
    from rich.console import Console

    from workbench.summary_table import RunSummary

    summary = RunSummary(result, db_path)
    summary.tables()
    # With several training seeds, each seed's tables (`seed1/evaluate`), then the spread.
    evaluated = [key for key in result.summaries if key == "evaluate" or key.endswith("/evaluate")]
    for key in evaluated:
        if not result.summaries[key].get("table"):
            continue
        from workbench.evaluate import evaluation_tables

        # Policy and task names come from outside: shown as written, never as markup.
        tables = Console(markup=False, emoji=False)
        if key != "evaluate":
            tables.print(f"{key.partition('/')[0].replace('seed', 'training seed ')}:")
        for table in evaluation_tables(visible_values(result.summaries[key])):
            tables.print(table)
    if result.seed_runs and result.across_seeds():
        from workbench.seeds import across_seeds_table

        Console(markup=False, emoji=False).print(across_seeds_table(visible_values(result.across_seeds())))
    if result.costs:
        from workbench.costs import costs_table

        Console().print(costs_table(result.costs))
    summary.next_steps()


if __name__ == "__main__":
    sys.exit(main())
