"""Item 8 of the day of curation: search the actions, observations and notes of every run
from the runs screen, and open a hit in its tree."""

from __future__ import annotations

from textual.widgets import DataTable, Input

from screens.app import LeafeApp
from screens.episode import EpisodeScreen
from screens.search import SearchScreen
from store import episodes, queries, steps
from store.db import open_store, transaction
from tests.ui.conftest import SIZE


async def search(app: LeafeApp, pilot, text: str) -> SearchScreen:
    if not isinstance(app.screen, SearchScreen):
        await pilot.press("slash")
        await pilot.pause()
    screen = app.screen
    assert isinstance(screen, SearchScreen)
    query = screen.query_one("#search-query", Input)
    query.value = text
    query.focus()
    await pilot.press("enter")
    await pilot.pause()
    return screen


def hit_rows(screen: SearchScreen) -> list[list[str]]:
    table = screen.query_one("#search-hits", DataTable)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


async def test_a_hit_in_an_action_opens_its_step_in_the_tree(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await search(app, pilot, "ordered sorted")
        rows = hit_rows(screen)
        assert rows and rows[0][:5] == ["1 humaneval-leafe", "HumanEval/0", "#1", "1", "action"]
        assert "ordered = sorted(numbers)" in rows[0][5]
        assert app.focused is screen.query_one("#search-hits")
        await pilot.press("enter")
        await pilot.pause()
        tree_screen = app.screen
        assert isinstance(tree_screen, EpisodeScreen) and tree_screen.run_id == store.leafe_run
        assert tree_screen.tree.cursor_node.data.id == store.steps["close_b1"]


async def test_notes_and_observations_are_searched_across_runs(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await search(app, pilot, "neighbours")
        kinds = {row[4] for row in hit_rows(screen)}
        assert "note" in kinds
        screen = await search(app, pilot, "asserts passed")
        assert {row[4] for row in hit_rows(screen)} == {"observation"}


async def test_steps_stored_after_the_store_was_made_are_found(store):
    db = open_store(store.path)
    with transaction(db):
        run_id = queries.create_run(db, config={}, stages=["explore"], name="later")
        task = queries.ensure_task(db, "coding", "Later/1", {})
        episode, root = episodes.create(db, run_id=run_id, task_id=task, purpose="explore", rollout=0,
                                               observation="write zebra()")
        steps.insert(db, episode_id=episode, parent_id=root, depth=1, action="def zebra(): return 'quagga'",
                            observation="ok", feedback={}, score=1.0, done=True, success=True)
    db.close()
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await search(app, pilot, "quagga")
        assert [row[:5] for row in hit_rows(screen)] == [[f"{run_id} later", "Later/1", f"#{episode}", "1", "action"]]


async def test_search_syntax_in_the_words_is_searched_as_written(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        for text in ('"', "AND (", "action: *", "NEAR(x y"):
            screen = await search(app, pilot, text)
            assert isinstance(app.screen, SearchScreen)
        assert str(screen.query_one("#search-info").render()) == "no hit"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "RunsScreen"
