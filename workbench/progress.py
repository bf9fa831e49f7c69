"""Rich progress bars on stderr for batch runs (stdout stays clean for `--json`).

Descriptions, fields and messages may carry text from outside (a task name, an exception
message), so each is shown as plain text with control characters made visible: never
obeyed by the terminal, never read as Rich markup.
"""

from __future__ import annotations

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


class RichProgress:
    """One bar per stage; `fields` passed to `advance` show after the bar (loss, live ...)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
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

    def advance(self, amount: int = 1, **fields: Any) -> None:
        if self.current is None:
            return
        info = "  ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in fields.items())
        self.bars.update(self.current, advance=amount, info=visible_line(info))

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
