"""The mouse: rows, tree nodes and the footer's keys all answer a click."""

from __future__ import annotations

import sqlite_utils
from textual.widget import Widget
from textual.widgets import DataTable

from screens.app import LeafeApp
from screens.curation import CurationScreen
from screens.episode import EpisodeScreen
from screens.runs import RunsScreen
from screens.widgets.trajectory_tree import TrajectoryTree
from tests.ui.conftest import SIZE, saved
from tests.ui.test_episode import detail_text


def footer_key(app: LeafeApp, description: str) -> Widget:
    """The footer's entry for a key, found by the description a person reads."""
    keys = {key.description: key for key in app.screen.query("Footer FooterKey")}
    assert description in keys, f"no {description!r} in the footer: {sorted(keys)}"
    return keys[description]


def summary_text(app: LeafeApp) -> str:
    return str(app.screen.query_one("#run-summary").render())


async def click_run_row(pilot, row: int) -> None:
    await pilot.click("#runs-table", offset=(4, 1 + row))  # line 0 is the header
    await pilot.pause()


async def test_clicking_a_run_selects_it_and_a_second_click_opens_it(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.screen.current_run_id() == store.explore_run  # the newest, first row
        await click_run_row(pilot, 1)
        assert isinstance(app.screen, RunsScreen)  # one click selects, it does not open
        assert app.screen.current_run_id() == store.leafe_run
        assert "run 1 humaneval-leafe" in summary_text(app)
        await click_run_row(pilot, 1)
        assert isinstance(app.screen, EpisodeScreen) and app.screen.run_id == store.leafe_run


async def test_a_clicked_run_opens_with_enter(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        await click_run_row(pilot, 1)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EpisodeScreen) and app.screen.run_id == store.leafe_run


async def test_clicking_a_tree_node_shows_it_in_the_detail_pane(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        tree = app.screen.query_one(TrajectoryTree)
        assert "ordered = sorted(numbers)" not in detail_text(app)
        branch = tree.step_nodes[store.steps["close_b1"]]
        await pilot.click(TrajectoryTree, offset=(12, branch.line - int(tree.scroll_y)))
        await pilot.pause()
        assert tree.cursor_node is branch
        shown = detail_text(app)
        assert "ordered = sorted(numbers)" in shown and "Sort the numbers first" in shown


async def test_footer_keys_curate_approve_and_go_back(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.click(footer_key(app, "Curate"))
        await pilot.pause()
        assert isinstance(app.screen, CurationScreen)
        assert app.screen.selected_id() == store.corrections["sorted"]
        await pilot.click(footer_key(app, "Approve"))
        await saved(pilot)
        db = sqlite_utils.Database(store.path)
        row = db["corrections"].get(store.corrections["sorted"])
        db.close()
        assert (row["status"], row["decided_by"]) == ("approved", "ana")
        await pilot.click(footer_key(app, "Back"))
        await pilot.pause()
        assert isinstance(app.screen, EpisodeScreen)


async def test_clicking_a_correction_then_reject_in_the_footer(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        queue = app.screen.query_one("#queue", DataTable)
        row = queue.get_row_index(str(store.corrections["all_pairs"]))
        await pilot.click(queue, offset=(6, 1 + row))
        await pilot.pause()
        assert app.screen.selected_id() == store.corrections["all_pairs"]
        await pilot.click(footer_key(app, "Reject"))
        await pilot.pause()
        await pilot.press("enter")  # the reason is optional: Enter rejects without one
        await saved(pilot)
    db = sqlite_utils.Database(store.path)
    assert db["corrections"].get(store.corrections["all_pairs"])["status"] == "rejected"
    assert db["corrections"].get(store.corrections["sorted"])["status"] == "proposed"
    db.close()
