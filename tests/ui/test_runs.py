"""The runs screen: newest run selected with focus, Enter opens it, delete with a modal."""

from __future__ import annotations

import sqlite_utils

from screens.app import LeafeApp
from screens.episode import EpisodeScreen
from screens.modals import ConfirmScreen
from screens.runs import RunsScreen
from store import views
from tests.ui.conftest import SIZE, saved


def counts(path, run_id: int) -> dict[str, int]:
    db = sqlite_utils.Database(path)
    try:
        from store.queries import run_counts

        result = run_counts(db, run_id)
        result["evals"] = db.execute("select count(*) from evals where run_id = ?", [run_id]).fetchone()[0]
        result["runs"] = db.execute("select count(*) from runs where id = ?", [run_id]).fetchone()[0]
        return result
    finally:
        db.close()


async def test_newest_run_is_selected_and_enter_opens_it(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert app.focused.id == "runs-table"
        assert screen.current_run_id() == store.explore_run  # the newest
        await pilot.press("enter")
        assert isinstance(app.screen, EpisodeScreen)
        assert app.screen.run_id == store.explore_run
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_table_shows_stages_counts_success_and_proposed(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE):
        table = app.screen.query_one("#runs-table")
        row = table.get_row(str(store.leafe_run))
        cells = [str(cell) for cell in row]
        assert "humaneval-leafe" in cells
        assert "3" in cells  # episodes and proposed corrections
        assert "67%" in cells
        assert "backtrack✓" in cells[-1] and "explore✓" in cells[-1]


async def test_delete_run_asks_then_removes_all_its_rows(store):
    before_other = counts(store.path, store.explore_run)
    assert counts(store.path, store.leafe_run)["corrections"] == 5
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down")
        assert app.screen.current_run_id() == store.leafe_run
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await saved(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert app.screen.query_one("#runs-table").row_count == 1
    after = counts(store.path, store.leafe_run)
    assert after == {"episodes": 0, "nodes": 0, "notes": 0, "corrections": 0, "evals": 0, "runs": 0}
    assert counts(store.path, store.explore_run) == before_other
    db = sqlite_utils.Database(store.path)
    assert db.execute("select count(*) from decisions").fetchone()[0] == 0
    assert db.execute("select count(*) from adapters").fetchone()[0] == 1  # adapters stay
    db.close()


async def test_delete_can_be_cancelled(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, RunsScreen)
    assert counts(store.path, store.explore_run)["runs"] == 1


async def test_empty_store_says_how_to_start(tmp_path):
    app = LeafeApp(tmp_path / "new.db")
    async with app.run_test(size=SIZE):
        text = str(app.screen.query_one("#run-summary").render())
        assert "No runs yet" in text
        assert views.runs_overview(app.db) == []
