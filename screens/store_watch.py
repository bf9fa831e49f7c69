"""Screens that follow what other programs write to the store, without a key press.

A timer asks `StoreChanges` (SQLite's `PRAGMA data_version` on a connection of its own,
which never waits) whether anyone committed; only then does a thread worker read what the
screen shows, on that same connection, and post it back. The interface thread never runs
the query, and an idle store costs one pragma a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work
from textual.message import Message

from screens.store_problems import is_store_problem
from store.browse import StoreChanges
from store.db import is_locked_error

POLL_S = 1.0


class StoreRead(Message):
    """What a screen's watcher read after the store changed."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class WatchesStore:
    """Mixed into a WorkbenchScreen: `watch_store(read)` polls while the screen is shown;
    `read(db)` runs in a worker when the store changed and its result arrives in
    `on_store_read`."""

    store_changes: StoreChanges | None = None
    store_reader: Callable[[Any], Any] | None = None

    def watch_store(self, read: Callable[[Any], Any]) -> None:
        self.store_reader = read
        self.store_changes = StoreChanges(self.workbench.db_path)  # type: ignore[attr-defined]
        self.set_interval(POLL_S, self.poll_store)  # type: ignore[attr-defined]

    def poll_store(self) -> None:
        # A screen under another one waits; it reads the store again when it comes back.
        if self.store_changes is not None and self.is_current and self.store_changes.changed():  # type: ignore[attr-defined]
            self.read_changed_store()

    @work(thread=True, exclusive=True, exit_on_error=False, group="store-watch")
    def read_changed_store(self) -> None:
        import sqlite_utils

        changes, read = self.store_changes, self.store_reader
        if changes is None or read is None:
            return
        try:
            with changes.lock:
                if changes.connection is None:
                    return
                result = read(sqlite_utils.Database(changes.connection))
        except Exception as error:
            if is_locked_error(error):  # another program holds the store: read it next second
                changes.version = None
                return
            if is_store_problem(error, self.workbench.db_path):  # type: ignore[attr-defined]
                self.app.call_from_thread(self.workbench.report_store_problem, error)  # type: ignore[attr-defined]
                return
            raise
        self.post_message(StoreRead(result))  # type: ignore[attr-defined]

    def stop_watching_store(self) -> None:
        if self.store_changes is not None:
            self.store_changes.close()
            self.store_changes = None
