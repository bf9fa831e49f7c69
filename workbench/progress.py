"""Rich progress bars on stderr for batch runs (stdout stays clean for `--json`).

Where stderr is not a terminal (`nohup ... > run.log`), Rich draws no live bar and prints
each bar once, when it stops: a 40-minute training stage showed nothing in its log until
it ended. There the bar is also written as a plain line at most once every
`LOG_EVERY_SECONDS` while it runs (done of total, percent, elapsed, eta, its fields).

Descriptions, fields and messages may carry text from outside (a task name, an exception
message), so each is shown as plain text with control characters made visible: never
obeyed by the terminal, never read as Rich markup.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from workbench.visible_text import visible, visible_line

LOG_EVERY_SECONDS = 60.0


def elapsed_text(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


class RichProgress:
    """One bar per stage; `fields` passed to `advance` show after the bar (loss, live ...)."""

    def __init__(self, console: Console | None = None, *, log_every: float = LOG_EVERY_SECONDS) -> None:
        self.console = console or Console(stderr=True)
        # No live bars without a terminal: plain lines instead, this often.
        self.log_every = None if self.console.is_terminal else log_every
        self.last_logged = 0.0
        self.bars = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            console=self.console,
            transient=False,
        )
        self.current: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def start(self, stage: str, total: int | None, description: str) -> None:
        self.finish()
        self.current = self.bars.add_task(visible_line(description), total=total, info="")
        self.last_logged = time.monotonic()  # a stage shorter than log_every logs no line

    def advance(self, amount: int = 1, **fields: Any) -> None:
        if self.current is None:
            return
        info = "  ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in fields.items())
        self.bars.update(self.current, advance=amount, info=visible_line(info))
        if self.log_every is not None and time.monotonic() - self.last_logged >= self.log_every:
            self.last_logged = time.monotonic()
            self.console.print(self.plain_line(), markup=False, highlight=False, soft_wrap=True)

    def plain_line(self) -> str:
        """The current bar as one line of text, for a log."""
        task = self.bars.tasks[self.bars.task_ids.index(self.current)]
        done = f"{task.completed:g}"
        if task.total:
            done += f"/{task.total:g} ({100 * task.completed / task.total:.0f}%)"
        parts = [task.description, done, f"elapsed {elapsed_text(task.elapsed or 0)}"]
        if task.time_remaining is not None:
            parts.append(f"eta {elapsed_text(task.time_remaining)}")
        if task.fields.get("info"):
            parts.append(task.fields["info"])
        return "  ".join(parts)

    def finish(self) -> None:
        if self.current is not None:
            task = self.bars.tasks[self.bars.task_ids.index(self.current)]
            if task.total is not None:
                self.bars.update(self.current, completed=task.total)
            self.bars.stop_task(self.current)  # its clock stops with the stage, whatever its count
            self.current = None

    def event(self, kind: str, **data: Any) -> None:
        if kind == "message":
            self.bars.console.print(Text(visible(data.get("text", "")), style="dim"))
