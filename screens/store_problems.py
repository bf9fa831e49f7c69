"""A store the screens cannot read or write (a column dropped by another program, a table
gone, a trigger that raises) is one line naming the store, never a crash.

Textual ends the app on an exception that escapes a handler, and a handler that failed
stops its widget for good, so the guard sits in the handlers themselves: every handler,
action or timer callback that reads the store wears `shows_store_problems`. A write goes
through `WorkbenchScreen.write_store`, whose worker reports the same line.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from store.schema import lacks_column_at
from workbench.errors import StoreError
from workbench.visible_text import visible_line

# sqlite3.Error: a missing column or table in a query, a trigger's RAISE, a damaged page.
# StoreError: the store's own one-line errors (unreadable file, locked for good). A KeyError
# naming a column the store lacks counts too (see `is_store_problem`).
STORE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, StoreError)

Method = TypeVar("Method", bound=Callable[..., Any])


def is_store_problem(error: BaseException, store: str | Path | None) -> bool:
    """A store error, or a `select *` row that lacks a column a screen reads: a KeyError
    naming a column the schema has and the store at `store` lacks (asked of the store
    itself: it was dropped after the store was made). A KeyError of any other key (a task
    spec's missing field, a column the store still has), or with no store to ask, is a bug,
    and is left to surface as one."""
    if isinstance(error, STORE_ERRORS):
        return True
    if not isinstance(error, KeyError) or len(error.args) != 1 or not isinstance(error.args[0], str):
        return False
    return store is not None and lacks_column_at(store, error.args[0])


def store_problem_line(store: str | Path, error: BaseException) -> str:
    """What the person sees: the error, naming the store, on one line."""
    if isinstance(error, KeyError):
        column = error.args[0] if error.args else "?"
        return (f"store {store}: it has no column {column!r}, which leafe-tui reads "
                "(was it changed by another program?)")
    if isinstance(error, StoreError):
        text = visible_line(error)
        return text if str(store) in text else f"store {store}: {text}"
    return f"store {store}: {visible_line(error) or type(error).__name__}"


def report_store_problem(node: Any, error: BaseException) -> None:
    """Tell the person, through the app, that the store failed this handler."""
    app = node.app
    report = getattr(app, "report_store_problem", None)
    if report is not None:
        report(error)
    else:  # a widget in another app (a benchmark's): still one line, still up
        app.notify(store_problem_line("", error), severity="error", markup=False)


def shows_store_problems(method: Method) -> Method:
    """Wrap a handler that reads the store: a store problem is reported in one line and the
    handler returns None, so the screen (and its widget's message loop) stays up."""
    if inspect.iscoroutinefunction(method):
        raise TypeError(f"{method.__qualname__}: shows_store_problems wraps plain methods only")

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (*STORE_ERRORS, KeyError) as error:
            if not is_store_problem(error, getattr(self.app, "db_path", None)):
                raise
            report_store_problem(self, error)
            return None

    return guarded  # type: ignore[return-value]
