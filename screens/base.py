"""What every screen of the workbench shares: the store, the run it is about, going back."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sqlite_utils
from textual.binding import Binding, BindingType
from textual.screen import Screen

from store import views

if TYPE_CHECKING:
    from screens.app import LeafeApp


class WorkbenchScreen(Screen):
    """A screen about one run (or none, for the runs list); escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="screen.back", tooltip="Return to the previous screen"),
    ]

    screen_title = "leafe-tui"

    def __init__(self, run_id: int | None = None) -> None:
        super().__init__()
        self.run_id = run_id

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

    def set_titles(self) -> None:
        self.title = self.screen_title
        header = views.run_header(self.db, self.run_id) if self.run_id is not None else None
        if header:
            self.sub_title = f"run {header['id']} {header['name']} · {header['status']}"
        else:
            self.sub_title = self.workbench.db_path.name

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return len(self.app.screen_stack) > 1  # the home screen has nowhere to go back to
        return True

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
