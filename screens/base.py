"""What every screen of the workbench shares: the store, the run it is about, going back,
and writing to the store without ever blocking the interface."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import sqlite_utils
from textual import work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

from screens.plain_text import visible_line
from screens.store_problems import is_store_problem, shows_store_problems, store_problem_line
from store import views
from workbench.errors import LeafeError

if TYPE_CHECKING:
    from screens.app import LeafeApp


STORE_WAIT_NOTICE_S = 1.0  # a write still waiting after this long says why


def one_line(text: object) -> str:
    """Text from outside on one line, control characters made visible."""
    return visible_line(text)


class StoreWriteFinished(Message):
    """A queued change reached the store (`error` empty) or was refused (`error` says why)."""

    def __init__(self, what: str, result: Any, error: str, then: Callable[[Any], None] | None) -> None:
        super().__init__()
        self.what = what
        self.result = result
        self.error = error
        self.then = then


class WorkbenchScreen(Screen):
    """A screen about one run (or none, for the runs list); escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="screen.back", tooltip="Return to the previous screen"),
    ]

    screen_title = "leafe-tui"

    def __init__(self, run_id: int | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.queued_writes: deque[tuple[str, Callable[[sqlite_utils.Database], Any], Any]] = deque()
        self.writing = False
        self.wait_notice: Timer | None = None

    @property
    def workbench(self) -> LeafeApp:
        return self.app  # type: ignore[return-value]

    @property
    def db(self) -> sqlite_utils.Database:
        return self.workbench.db

    def current_run_id(self) -> int | None:
        """The run that `c`, `d` and `p` act on from this screen."""
        return self.run_id

    def on_mount(self) -> None:
        self.set_titles()

    @shows_store_problems
    def set_titles(self) -> None:
        self.title = self.screen_title
        header = views.run_header(self.db, self.run_id) if self.run_id is not None else None
        if header:
            run = f"run {header['id']}"
            # An unnamed run's name is already "run N".
            named = run if header["name"] == run else f"{run} {visible_line(header['name'])}"
            self.sub_title = f"{named} · {header['status']}"
        else:
            self.sub_title = self.workbench.db_path.name

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return len(self.app.screen_stack) > 1  # the home screen has nowhere to go back to
        return True

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    # -- writing to the store ---------------------------------------------------------

    def write_store(
        self,
        what: str,
        change: Callable[[sqlite_utils.Database], Any],
        then: Callable[[Any], None] | None = None,
    ) -> None:
        """Apply `change` to the store in a worker, in the order asked; `then(result)` runs
        here once it landed. Another program holding the store's lock makes a write wait,
        never the interface; a refused write (locked, or refused by the core) is one line
        in a notification."""
        self.queued_writes.append((what, change, then))
        if not self.writing:
            self.next_write()

    def next_write(self) -> None:
        if not self.queued_writes:
            self.writing = False
            return
        self.writing = True
        what, change, then = self.queued_writes.popleft()
        self.wait_notice = self.set_timer(STORE_WAIT_NOTICE_S, self.say_store_is_busy)
        self.apply_write(what, change, then)

    def say_store_is_busy(self) -> None:
        if self.writing:
            self.notify("Waiting for the store: another program is writing to it…", timeout=3)

    @work(thread=True, exit_on_error=False, group="store-write")
    def apply_write(self, what: str, change: Callable[[sqlite_utils.Database], Any],
                    then: Callable[[Any], None] | None) -> None:
        try:
            result = change(self.workbench.writer_db())
        except Exception as error:
            self.post_message(StoreWriteFinished(what, None, self.write_error_line(error), then))
        else:
            self.post_message(StoreWriteFinished(what, result, "", then))

    def write_error_line(self, error: Exception) -> str:
        """Why a change was not saved, in one line: a store problem (a trigger that raises,
        a dropped column) names the store; the core's refusals speak for themselves; a bug
        still reaches the reviewer, and the queue goes on."""
        if is_store_problem(error, self.workbench.db_path):
            return store_problem_line(self.workbench.db_path, error)
        if isinstance(error, LeafeError):
            return one_line(str(error)) or type(error).__name__
        return one_line(f"{type(error).__name__}: {error}")

    def on_store_write_finished(self, message: StoreWriteFinished) -> None:
        message.stop()
        if self.wait_notice is not None:
            self.wait_notice.stop()
            self.wait_notice = None
        if message.error:
            dropped = len(self.queued_writes)
            self.queued_writes.clear()
            later = f" ({dropped} later change{'s' if dropped != 1 else ''} not saved either)" if dropped else ""
            self.notify(f"{message.what} not saved: {message.error}{later}", severity="error", timeout=8)
        elif message.then is not None:
            message.then(message.result)
        self.next_write()
