"""Curation keeps its audit trail: a rejection takes an optional reason shown in the table,
the leakage check's reason shows in the table too, an undo is a recorded decision of its
own, `u` steps back through several decisions, and `h` shows a correction's history."""

from __future__ import annotations

import pytest
import sqlite_utils

from screens.app import LeafeApp
from screens.curation import CurationScreen, HistoryScreen
from screens.modals import ReasonScreen
from tests.ui.conftest import SIZE, saved
from tests.ui.fake_edits import edits_without_the_environment, keep_the_edit  # noqa: F401
from tests.ui.test_curation import correction, open_curation, shown


def decisions(path) -> list[tuple]:
    db = sqlite_utils.Database(path)
    try:
        return db.execute(
            "select id, correction_id, previous_status, status, reason, undoes from decisions order by id"
        ).fetchall()
    finally:
        db.close()


def reason_cell(screen: CurationScreen, correction_id: int) -> str:
    return str(screen.query_one("#queue").get_cell(str(correction_id), "reason"))


async def test_a_rejection_takes_a_reason_shown_in_the_table(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        first = screen.selected_id()
        await pilot.press("r")
        assert isinstance(app.screen, ReasonScreen)
        await pilot.press(*"tests nothing", "enter")
        await saved(pilot)
        assert correction(store.path, first)["status"] == "rejected"
        assert reason_cell(screen, first) == "tests nothing"
        await pilot.press("r", "escape")  # escape decides nothing
        await saved(pilot)
        assert correction(store.path, screen.selected_id())["status"] == "proposed"


@pytest.mark.usefixtures("edits_without_the_environment")
async def test_the_leakage_reason_shows_in_the_table(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        first = screen.selected_id()
        note = correction(store.path, first)["note_id"]
        db = sqlite_utils.Database(store.path)
        text = db.execute("select text from notes where id = ?", [note]).fetchone()[0]
        db.close()
        await pilot.press("e")
        app.screen.query_one("#edit-text").text = text  # an action that copies its note
        await keep_the_edit(pilot)
        await saved(pilot)
        assert correction(store.path, first)["status"] == "rejected"
        cell, stored = reason_cell(screen, first), correction(store.path, first)["reason"]
        assert cell.startswith("leakage:") and stored.startswith(cell.rstrip("…"))  # cut to the column


async def test_undo_is_a_decision_of_its_own_and_steps_back_through_several(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        first = screen.selected_id()
        await pilot.press("a")  # first approved; the cursor moves on
        await saved(pilot)
        second = screen.selected_id()
        await pilot.press("r", *"off", "enter")
        await saved(pilot)
        before = decisions(store.path)
        await pilot.press("u")
        await saved(pilot)
        assert correction(store.path, second)["status"] == "proposed"
        await pilot.press("u")  # a second press undoes the decision before
        await saved(pilot)
        assert correction(store.path, first)["status"] == "proposed"
        after = decisions(store.path)
        assert after[: len(before)] == before  # nothing deleted
        undo_second, undo_first = after[len(before):]
        assert (undo_second[1], undo_second[3], undo_second[5]) == (second, "proposed", before[-1][0])
        assert (undo_first[1], undo_first[3], undo_first[5]) == (first, "proposed", before[-2][0])
        await pilot.press("a")  # a new decision gets a new id, never an undone one's
        await saved(pilot)
        assert decisions(store.path)[-1][0] == undo_first[0] + 1
        await pilot.press("u", "u", "u")
        await saved(pilot)
        assert any("Nothing to undo" in n.message for n in app._notifications)

        screen.select(second)
        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        history = str(app.screen.query_one("#history").render())
        assert "proposed → rejected  (off)  undone by" in history
        assert "undo: rejected → proposed" in history
        await pilot.press("escape")
        assert app.screen is screen
        assert shown(screen, "original")  # the screen is as it was
