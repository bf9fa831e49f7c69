"""The leafe-tui application: a small shell that opens the store and routes between screens.

Start-up imports Textual and the store only; models, torch and the pipeline are imported
by the screens' workers when a run, a branch or a training starts.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import ClassVar

import sqlite_utils
from textual.app import App
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen

from screens.commands import WorkbenchCommands
from screens.plain_text import visible, visible_line
from screens.runs import RunsScreen
from screens.store_problems import store_problem_line
from store.db import open_store

SAME_PROBLEM_QUIET_S = 5.0  # a store problem met by several handlers at once is said once


class LeafeApp(App[None]):
    """Runs → episodes → curation → distill → results, on one store."""

    CSS_PATH = "leafe.tcss"
    TITLE = "leafe-tui"
    COMMANDS = {WorkbenchCommands}  # its own list first; Textual's widget help stays out
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave leafe-tui"),
        Binding("question_mark", "help", "Keys", id="app.help", tooltip="Every key of this screen"),
        Binding("c", "curation", "Curate", id="app.curation", tooltip="Review this run's corrections"),
        Binding("d", "distill", "Distill", id="app.distill", tooltip="Train a LoRA adapter on approved corrections"),
        Binding("p", "results", "Pass@k", id="app.results", tooltip="Pass@k per policy; launch an evaluation"),
        Binding("l", "live", "Live", id="app.live", show=False,
                tooltip="Open the run that is running now (started here or by another program)"),
    ]

    def __init__(self, db_path: str | Path, *, reviewer: str = "reviewer") -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.reviewer = reviewer
        self._db: sqlite_utils.Database | None = None
        self._writer: sqlite_utils.Database | None = None
        self._writer_lock = threading.Lock()
        self._last_problem: tuple[str, float] = ("", 0.0)

    @property
    def db(self) -> sqlite_utils.Database:
        """The interface's own connection (workers open theirs: connections are per thread)."""
        if self._db is None:
            self._db = open_store(self.db_path)
        return self._db

    def writer_db(self) -> sqlite_utils.Database:
        """The connection that screens' write workers share (one write at a time per screen),
        so waiting for another program's lock never holds up the interface's reads."""
        with self._writer_lock:
            if self._writer is None:
                self._writer = open_store(self.db_path)
            return self._writer

    # -- what reaches the terminal ----------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification of every screen and widget: shown as written (control
        characters visible), never as markup, whatever the caller asked."""
        super().notify(visible(message), title=visible_line(title), severity=severity, timeout=timeout,
                       markup=False)

    def format_title(self, title: str, sub_title: str) -> Content:
        # A run's name is in the header; it comes from a config file's name or the store.
        return super().format_title(visible_line(title), visible_line(sub_title))

    def report_store_problem(self, error: BaseException) -> None:
        """One line naming the store; the same line again within a few seconds is not
        repeated (a tree, its pane and a timer often meet the same broken column)."""
        line = store_problem_line(self.db_path, error)
        last, when = self._last_problem
        if line == last and time.monotonic() - when < SAME_PROBLEM_QUIET_S:
            return
        self._last_problem = (line, time.monotonic())
        self.log.error(line, error)
        self.notify(line, severity="error", timeout=10)

    def get_default_screen(self) -> Screen:
        return RunsScreen()

    async def action_quit(self) -> None:
        # Running stages stop after their current step (already committed), so the
        # process does not wait on a worker thread that nobody watches any more.
        screens = [*self.screen_stack]
        if self.is_screen_installed("live"):
            screens.append(self.get_screen("live"))
        for screen in screens:
            cancel = getattr(screen, "cancel", None)
            if cancel is not None:
                cancel.set()
        self.exit()

    def on_unmount(self) -> None:
        if self._db is not None:
            self._db.close()
        writing = any(worker.group == "store-write" and worker.is_running for worker in self.workers)
        if self._writer is not None and not writing:  # a write still waiting closes with the process
            self._writer.close()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # On a dialog, only its own keys (and quit) apply.
        navigation = action in ("curation", "distill", "results", "live", "new_run", "help")
        if navigation and isinstance(self.screen, ModalScreen):
            return False
        # The key of the screen you are on is hidden there (the footer has room for the rest).
        here = {"curation": "Curation", "distill": "Distill", "results": "Results"}.get(action)
        return not (here and getattr(self.screen, "screen_title", "") == here)

    # -- navigation -------------------------------------------------------------------

    def current_run_id(self) -> int | None:
        finder = getattr(self.screen, "current_run_id", None)
        return finder() if callable(finder) else None

    def open_run(self, run_id: int, *, step_id: int | None = None) -> None:
        """A run's episode tree; with `step_id`, opened down to that step."""
        from screens.episode import EpisodeScreen

        self.push_screen(EpisodeScreen(run_id, reveal_step=step_id))

    def action_go_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_curation(self) -> None:
        from screens.curation import CurationScreen

        run_id = self.current_run_id()
        if run_id is None:
            self.notify("Open a run first: curation works on one run's corrections.", severity="warning")
            return
        if isinstance(self.screen, CurationScreen):
            return
        self.push_screen(CurationScreen(run_id))

    def action_distill(self) -> None:
        from screens.distill import DistillScreen

        if not isinstance(self.screen, DistillScreen):
            self.push_screen(DistillScreen(self.current_run_id()))

    def action_results(self) -> None:
        from screens.results import ResultsScreen

        if not isinstance(self.screen, ResultsScreen):
            self.push_screen(ResultsScreen(self.current_run_id()))

    def action_new_run(self) -> None:
        """The new-run form (and the run it started, while that one goes on)."""
        from screens.live import LiveScreen

        if isinstance(self.screen, LiveScreen):
            return
        if not self.is_screen_installed("live"):
            # Installed, so leaving it keeps the run's worker alive; `n` comes back to it.
            self.install_screen(LiveScreen(), name="live")
        self.push_screen("live")

    def action_live(self) -> None:
        """The run going on now: the one this workbench started, else the newest run the
        store says is running (a batch run in another terminal), in its live tree."""
        from screens.episode import EpisodeScreen
        from screens.live import LiveScreen
        from store.browse import running_run

        if self.is_screen_installed("live") and getattr(self.get_screen("live"), "running", False):
            if not isinstance(self.screen, LiveScreen):
                self.push_screen("live")
            return
        run_id = running_run(self.db)
        if run_id is None:
            self.notify("No run is running now; n on the runs screen starts one.", severity="warning")
        elif not (isinstance(self.screen, EpisodeScreen) and self.screen.run_id == run_id):
            self.open_run(run_id)

    def screenshot_folder(self) -> Path:
        """Where screenshots go: beside the store where that folder is writable (a machine
        may have no ~/Downloads, Textual's default), else the current folder."""
        folder = self.db_path.resolve().parent
        return folder if os.access(folder, os.W_OK) else Path.cwd()

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Save an SVG of the screen (the palette's Screenshot) and say where it went."""
        folder = Path(path) if path else self.screenshot_folder()
        try:
            saved = self.save_screenshot(filename, str(folder), time_format)
        except OSError as error:
            self.notify(f"Could not save a screenshot in {folder}: {error.strerror or error}",
                        title="Screenshot", severity="error", markup=False)
            return None
        self.notify(f"Saved {saved}", title="Screenshot", markup=False)
        return saved

    def action_help(self) -> None:
        from screens.help import HelpScreen, keys_of

        if isinstance(self.screen, HelpScreen):
            return
        title = getattr(self.screen, "screen_title", type(self.screen).__name__)
        self.push_screen(HelpScreen(title, keys_of(self.screen)))


def run_app(db_path: str | Path, *, reviewer: str = "reviewer") -> None:
    LeafeApp(db_path, reviewer=reviewer).run()
