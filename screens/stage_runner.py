"""One way for a screen to run a stage of the core in a thread worker: the live, results
and distill screens each start one job at a time, report its progress, cancel it with
ctrl+x after the current step, and hear once how it ended, whatever ended it.

The job is a plain function of `(progress, cancel)`. Whatever it raises (a refusal of
the core before anything ran, a store problem, a bug) becomes the one `StageFinished`
message the screen waits for, so a screen never stays "busy" after its worker died.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from textual import work
from textual.message import Message
from textual.widgets import ProgressBar

from screens.base import WorkbenchScreen, one_line
from screens.progress_bridge import MessageProgress, StageProgress
from screens.store_problems import is_store_problem, store_problem_line
from workbench.context import Progress
from workbench.errors import Cancelled, LeafeError

StageJob = Callable[[Progress, threading.Event], Any]
"""What a screen runs: gets the progress reporter and the cancel flag, returns a result."""

STAGE_GROUP = "stage"


class StageFinished(Message):
    """The job returned (`result`), was cancelled, or failed (`error`, one line)."""

    def __init__(self, result: Any, error: str = "", *, cancelled: bool = False) -> None:
        super().__init__()
        self.result = result
        self.error = error
        self.cancelled = cancelled

    @property
    def failed(self) -> bool:
        return bool(self.error)


class StageRunnerScreen(WorkbenchScreen):
    """A screen that runs one stage job at a time. Subclasses name their progress bar in
    `progress_bar_id` and react in `stage_finished` (and optionally `progress_shown`)."""

    progress_bar_id = ""
    busy_notice = "A job is in progress; ctrl+x cancels it."

    def __init__(self, run_id: int | None = None) -> None:
        super().__init__(run_id)
        self.cancel = threading.Event()
        self.busy = False

    def start_stage(self, job: StageJob) -> bool:
        """Run `job` in the worker unless one is running; False (and a warning) if one is."""
        if self.busy:
            self.notify(self.busy_notice, severity="warning")
            return False
        self.cancel.clear()
        self.busy = True
        self.run_stage_job(job)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group=STAGE_GROUP)
    def run_stage_job(self, job: StageJob) -> None:
        progress = MessageProgress(self)
        try:
            result = job(progress, self.cancel)
        except Cancelled:
            self.post_message(StageFinished(None, cancelled=True))
        except BaseException as error:  # noqa: BLE001 - every ending must reach the screen
            self.post_message(StageFinished(None, self.stage_error_line(error) or type(error).__name__))
        else:
            self.post_message(StageFinished(result))

    def stage_error_line(self, error: BaseException) -> str:
        if is_store_problem(error, self.workbench.db_path):
            return store_problem_line(self.workbench.db_path, error)
        if isinstance(error, LeafeError | ValueError):
            return one_line(str(error))
        if isinstance(error, ImportError):
            return f"not available: {one_line(error)}"
        return one_line(f"{type(error).__name__}: {error}")

    def cancel_stage(self) -> bool:
        """Ask the job to stop after its current step; False when nothing runs."""
        if not self.busy:
            self.notify("Nothing is running.", severity="warning", timeout=2)
            return False
        self.cancel.set()
        return True

    def on_stage_progress(self, message: StageProgress) -> None:
        if self.progress_bar_id:
            bar = self.query_one(f"#{self.progress_bar_id}", ProgressBar)
            bar.add_class("-active")
            bar.update(total=message.total, progress=message.completed)
        self.progress_shown(message)

    def progress_shown(self, message: StageProgress) -> None:
        """What else the screen shows of the job's progress (a status line, a loss plot)."""

    def on_stage_finished(self, message: StageFinished) -> None:
        message.stop()
        self.busy = False
        self.stage_finished(message)

    def stage_finished(self, message: StageFinished) -> None:
        raise NotImplementedError
