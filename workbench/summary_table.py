"""The end of a batch run, for a person: what each stage did and what the LEAFE loop
produced, as Rich tables with counts in words, then the commands to run next.

`--json` prints `RunResult.as_json()` instead; nothing here reaches stdout.
"""

from __future__ import annotations

import shlex
import sqlite3
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from store.activity import RunActivity, run_activity
from store.db import open_store
from workbench.errors import LeafeError
from workbench.visible_text import visible
from workbench.words import counted, counted_as

# Keys of a stage summary that other tables show (evaluate's Pass@k and pairs; the run's
# corrections in all, beside backtrack's new ones, in "what happened").
SHOWN_ELSEWHERE = frozenset({"table", "pairs", "overlap", "leafe_policy", "corrections_total"})


# Summary keys whose plain name would read badly as a count ("n 16", "n examples 12").
LABELS = {
    "by_author": "by author",
    "n": "rollouts per task",
    "n_examples": "examples",
    "n_skipped": "examples skipped",
    "env_steps_used": "environment steps used",
    "env_steps_budget": "environment steps allowed",
}


def summary_value(key: str, value: Any) -> str:
    """One entry of a stage summary in words: `3 branches`, `1 success`, `2 approved`,
    `final loss 0.412`."""
    name = LABELS.get(key, key.replace("_", " "))
    first, _, rest = name.partition(" ")
    if isinstance(value, bool):
        return f"{name}: {'yes' if value else 'no'}"
    if isinstance(value, int):
        if first.endswith("s"):  # a count of things: the noun agrees with it
            return " ".join(filter(None, [counted_as(value, first), rest]))
        if first.endswith("ed"):  # a count by status: "2 approved", "1 left out"
            return f"{value} {name}"
        return f"{name} {value}"
    if isinstance(value, float):
        return f"{name} {value:.4g}"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} {v}" for k, v in value.items())
        return f"{name}: {inner}" if inner else f"{name}: none"
    return f"{name}: {value}"


def stage_table(summaries: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per stage that ran, its summary in words."""
    table = Table(title="stages", title_justify="left", show_header=True, header_style="bold")
    table.add_column("stage", style="bold", no_wrap=True)
    table.add_column("what it did")
    for stage, summary in summaries.items():
        shown = [summary_value(key, value) for key, value in summary.items() if key not in SHOWN_ELSEWHERE]
        # Summaries quote names and errors from outside: shown as written, never obeyed.
        table.add_row(Text(visible(stage)), Text(visible(", ".join(shown) or "nothing to do")))
    return table


def activity_table(activity: RunActivity) -> Table:
    """The LEAFE loop in counts: from explored episodes to corrections waiting for review."""
    corrections = activity.corrections
    table = Table(title="what happened", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    table.add_column("detail", style="dim")
    rows = [
        ("episodes explored", activity.episodes, f"{activity.episodes - activity.successes} failed"),
        ("successes", activity.successes, "succeeded without backtracking"),
        ("notes", activity.notes, "written after a failure"),
        ("backtrack points", activity.backtrack_points, "steps a note rewinds to"),
        ("branches", activity.branches, f"{counted(activity.branches_succeeded, 'branch', 'branches')} succeeded"),
        ("proposed corrections", corrections["proposed"], "waiting for review"),
    ]
    decided = [(status, corrections[status]) for status in ("approved", "edited", "rejected") if corrections[status]]
    rows += [(f"{status} corrections", number, "") for status, number in decided]
    for label, number, detail in rows:
        table.add_row(label, str(number), detail)
    return table


def next_commands(program: str, db_path: str | Path, activity: RunActivity) -> Text:
    """What to type next: open the workbench on this store to review, then distill."""
    open_command = shlex.join([program, "--db", str(db_path)])
    proposed = activity.corrections["proposed"]
    trainable = activity.corrections["approved"] + activity.corrections["edited"]
    text = Text("next:\n", style="bold")
    text.append(f"  {visible(open_command)}\n", style="bold cyan")
    if proposed:
        text.append(f"      Enter opens the run; c reviews its {counted(proposed, 'proposed correction')}\n"
                    "      (a approve, e edit, r reject)\n")
    else:
        text.append("      Enter opens the run: its tree, notes and branches\n")
    text.append("  then d, and ctrl+s", style="bold cyan")
    what = "the approved corrections" if proposed or not trainable else counted(trainable, "approved correction")
    text.append(f", in the workbench\n      distills {what} into a LoRA adapter beside the store")
    return text


def summary_renderables(result: Any, activity: RunActivity | None) -> list[RenderableType]:
    """The tables a finished (or stopped) batch run shows after its progress bars."""
    header = Text.assemble((f"run {result.run_id}", "bold"), f" {result.status}")
    shown: list[RenderableType] = [header]
    if result.summaries:
        shown.append(stage_table(result.summaries))
    if activity is not None and activity.episodes:
        shown.append(activity_table(activity))
    return shown


class RunSummary:
    """What `leafe-tui --batch` shows at the end of a run, on stderr: `tables()` first, then
    whatever else the command prints (Pass@k, costs), and `next_steps()` last of all."""

    def __init__(self, result: Any, db_path: str | Path, console: Console | None = None) -> None:
        self.result, self.db_path = result, db_path
        self.console = console or Console(stderr=True)
        self.activity = activity_of(db_path, result.run_id)

    def tables(self) -> None:
        if self.result.status == "nothing-to-resume":
            self.console.print(f"run {self.result.run_id} is finished; nothing to resume.")
            return
        self.console.print(Group(*summary_renderables(self.result, self.activity)))

    def next_steps(self) -> None:
        if self.result.status != "nothing-to-resume" and self.activity is not None and self.activity.episodes:
            sys.stdout.flush()  # the tables printed on stdout come before it
            self.console.print(next_commands(program_name(), self.db_path, self.activity))


def activity_of(db_path: str | Path, run_id: int) -> RunActivity | None:
    """The run's counts read back from its store; None where it cannot be read (the run's
    own outcome is reported either way: the counts are a courtesy)."""
    try:
        db = open_store(db_path, migrate=False)
    except LeafeError:
        return None
    try:
        return run_activity(db, run_id)
    except sqlite3.Error:
        return None
    finally:
        db.close()


def program_name() -> str:
    """How this command was typed (`.venv/bin/leafe-tui` under make), so the commands it
    prints next work as they are; `leafe-tui` when it runs as a module."""
    invoked = sys.argv[0] if sys.argv else ""
    return invoked if Path(invoked).name == "leafe-tui" else "leafe-tui"
