"""A store changed by another program (a column dropped, a trigger that raises) gives one
line naming the store, and the workbench stays up: its keys still work."""

from __future__ import annotations

import sqlite3

import pytest
from textual.widgets import DataTable

from screens.app import LeafeApp
from screens.curation import CurationScreen
from screens.distill import DistillScreen
from screens.episode import EpisodeScreen
from screens.results import ResultsScreen
from screens.runs import RunsScreen
from screens.widgets.trajectory_tree import TrajectoryTree
from store import views
from tests.ui.conftest import SIZE, open_run_screen, saved


def change_store(path, *statements: str) -> None:
    """What another program does to the store, with sqlite3 directly."""
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def error_lines(app: LeafeApp) -> list[str]:
    return [notification.message for notification in app._notifications if notification.severity == "error"]


def assert_lines_naming_the_store(app: LeafeApp, store_path, *expected: str) -> str:
    """Every error shown is one line naming the store; one of them says all of `expected`.
    Returns that line."""
    lines = error_lines(app)
    assert lines, "no error was shown"
    for line in lines:
        assert "\n" not in line and f"store {store_path}" in line and "Traceback" not in line, line
    matching = [line for line in lines if all(piece in line for piece in expected)]
    assert matching, f"no line says {expected}: {lines}"
    return matching[0]


async def go_home_and_back(app: LeafeApp, pilot) -> None:
    """The app still answers keys: back to the runs, and the runs are listed."""
    for _ in range(len(app.screen_stack) - 1):
        await pilot.press("escape")
        await pilot.pause()
    assert isinstance(app.screen, RunsScreen)
    assert app.screen.query_one("#runs-table", DataTable).row_count == 2


async def test_a_dropped_column_the_detail_pane_reads_is_one_line(store):
    # Read through `select n.*`. (Not `observation`: the search index's triggers name it, and
    # SQLite refuses to drop a column a trigger uses.)
    change_store(store.path, "alter table nodes drop column feedback")
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EpisodeScreen)
        assert_lines_naming_the_store(app, store.path, "no column 'feedback'")
        assert len(error_lines(app)) == 1
        # The tree still moves and opens steps; the same problem is not repeated for each.
        tree = screen.query_one(TrajectoryTree)
        tree.move_cursor(tree.step_nodes[store.steps["close_s1"]])
        await pilot.press("down")
        await pilot.pause()
        assert tree.cursor_node is not None and tree.cursor_node.data.id == store.steps["close_b1"]
        assert len(error_lines(app)) == 1
        await go_home_and_back(app, pilot)
    assert app.return_code in (None, 0)


@pytest.mark.parametrize(
    ("table", "column", "key", "screen_type", "expected"),
    [
        ("runs", "error", None, RunsScreen, "no such column"),  # the home screen, at start
        ("nodes", "backtrack_point", "enter", EpisodeScreen, "no such column"),  # the tree's labels
        ("notes", "author", "c", CurationScreen, "no such column"),  # the tree's notes, the curation queue
        ("adapters", "lineage", "d", DistillScreen, "no column 'lineage'"),  # the adapters table
        ("evals", "ci_low", "p", ResultsScreen, "no such column"),  # the Pass@k table
    ],
)
async def test_a_dropped_column_any_screen_reads_is_one_line(store, table, column, key, screen_type, expected):
    change_store(store.path, f"alter table {table} drop column {column}")
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        if key == "enter":
            app.open_run(store.leafe_run)
        elif key is not None:
            await open_run_screen(pilot, store.leafe_run, key, screen_type)
        await pilot.pause()
        assert isinstance(app.screen, screen_type)
        assert_lines_naming_the_store(app, store.path, expected)
        # Still up: the keys of the app still work.
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, screen_type)
    assert app.return_code in (None, 0)


def read_fails_with(key: str):
    """A store read whose row lacks `key`: stands in for a screen's reading code."""
    def read(*args, **kwargs):
        raise KeyError(key)

    return read


async def test_a_key_naming_a_column_the_store_lacks_is_one_line(store, monkeypatch):
    change_store(store.path, "alter table nodes drop column feedback")
    monkeypatch.setattr(views, "run_header", read_fails_with("feedback"))  # the title of the run's screen
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        assert isinstance(app.screen, EpisodeScreen)
        assert_lines_naming_the_store(app, store.path, "no column 'feedback'")
    assert app.return_code in (None, 0)


@pytest.mark.parametrize(
    "key",
    [
        "prompt",  # no column of the store at all: seen once as a task spec's missing field
        "feedback",  # a column the store still has
    ],
)
async def test_any_other_missing_key_surfaces_as_the_bug_it_is(store, monkeypatch, key):
    monkeypatch.setattr(views, "run_header", read_fails_with(key))
    app = LeafeApp(store.path)
    with pytest.raises(KeyError) as raised:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            app.open_run(store.leafe_run)
            await pilot.pause()
    assert raised.value.args == (key,)
    assert not [line for line in error_lines(app) if "no column" in line]


async def test_a_trigger_that_refuses_a_decision_is_one_line_and_nothing_changes(store):
    # The trigger's message carries an escape sequence: it is shown, not obeyed.
    change_store(store.path, """create trigger refuse_decisions before update on corrections
                                begin select raise(abort, 'refused \x1b]0;pwned\x07'); end""")
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "c", CurationScreen)
        first = screen.selected_id()
        await pilot.press("a")
        await saved(pilot)
        line = assert_lines_naming_the_store(app, store.path, f"Correction {first} approved not saved",
                                                "refused ␛]0;pwned␇")
        assert "\x1b" not in line and "\x07" not in line
        assert screen.rows[first]["status"] == "proposed"
        # Still up: the queue moves and another key writes (and is refused the same way).
        await pilot.press("down")
        await pilot.pause()
        assert screen.selected_id() != first
        await go_home_and_back(app, pilot)
    status = sqlite3.connect(store.path).execute("select status from corrections where id = ?", [first]).fetchone()
    assert status == ("proposed",)
