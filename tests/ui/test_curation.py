"""The curation screen: every decision lands in the store at once, with the reviewer."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from screens.app import LeafeApp
from screens.curation import CurationScreen
from screens.episode import EpisodeScreen
from screens.modals import EditTextScreen
from tests.ui.conftest import SIZE, open_run_screen, saved
from tests.ui.fake_edits import edits_without_the_environment, keep_the_edit  # noqa: F401


def correction(path, correction_id: int) -> dict:
    db = sqlite_utils.Database(path)
    try:
        return db["corrections"].get(correction_id)
    finally:
        db.close()


async def open_curation(app: LeafeApp, pilot, run_id: int) -> CurationScreen:
    return await open_run_screen(pilot, run_id, "c", CurationScreen)


def shown(screen: CurationScreen, widget_id: str) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, color_system=None)
    console.print(screen.query_one(f"#{widget_id}").content)
    return console.export_text()


async def test_c_from_a_run_opens_the_queue_on_the_first_proposed(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        assert screen.selected_id() == store.corrections["sorted"]
        assert "for a, b in zip(numbers, numbers[1:]):" in shown(screen, "original")
        assert "ordered = sorted(numbers)" in shown(screen, "corrected")  # the branch's first step
        assert "Sort the numbers first" in shown(screen, "note")
        diff = shown(screen, "diff")
        assert "-    for a, b in zip(numbers, numbers[1:]):" in diff
        assert "+    ordered = sorted(numbers)" in diff
        await pilot.press("escape")
        assert isinstance(app.screen, EpisodeScreen)


async def test_approve_writes_at_once_and_moves_to_the_next(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        await pilot.press("a")
        await saved(pilot)
        row = correction(store.path, store.corrections["sorted"])
        assert (row["status"], row["decided_by"]) == ("approved", "ana")
        assert screen.selected_id() == store.corrections["all_pairs"]
        await pilot.press("r", "enter")  # the reason is optional
        await saved(pilot)
        assert correction(store.path, store.corrections["all_pairs"])["status"] == "rejected"
        assert screen.selected_id() == store.corrections["mad_mean"]


async def test_corrected_action_of_a_deeper_branch_is_its_first_step(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        screen.select(store.corrections["all_pairs"])  # leaf two steps into the branch
        assert "for b in numbers[i:]:" in shown(screen, "corrected")


@pytest.mark.usefixtures("edits_without_the_environment")
async def test_edit_stores_the_edited_action_and_undo_restores(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        await pilot.press("e")
        assert isinstance(app.screen, EditTextScreen)
        app.screen.query_one("#edit-text").text = "def has_close_elements(numbers, threshold):\n    return True"
        await keep_the_edit(pilot)
        await saved(pilot)
        row = correction(store.path, store.corrections["sorted"])
        assert row["status"] == "edited"
        assert row["edited_action"].endswith("return True")
        screen.select(store.corrections["sorted"])
        assert "return True" in shown(screen, "corrected")
        await pilot.press("u")
        await saved(pilot)
        row = correction(store.path, store.corrections["sorted"])
        assert (row["status"], row["edited_action"]) == ("proposed", None)
        assert screen.selected_id() == store.corrections["sorted"]


@pytest.mark.usefixtures("edits_without_the_environment")
async def test_an_edit_that_copies_the_note_is_recorded_as_rejected_and_said(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        await open_curation(app, pilot, store.leafe_run)
        note = shown(app.screen, "note")
        await pilot.press("e")
        app.screen.query_one("#edit-text").text = (
            "# Adjacent pairs in the input order are compared, so close values far apart\n"
            "# are missed. Sort the numbers first, or compare every pair.\nreturn True"
        )
        await keep_the_edit(pilot)
        await saved(pilot)
        row = correction(store.path, store.corrections["sorted"])
        assert row["status"] == "rejected", "the leakage check let a note-copying edit through"
        assert "Sort the numbers first" in note
        said = [n.message for n in app._notifications]
        assert any("rejected, not edited" in message and "leakage" in message for message in said), said


async def test_escape_in_the_editor_changes_nothing(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        await open_curation(app, pilot, store.leafe_run)
        await pilot.press("e")
        await pilot.press("escape")
        assert isinstance(app.screen, CurationScreen)
        assert correction(store.path, store.corrections["sorted"])["status"] == "proposed"


async def test_a_note_by_hand_has_author_human(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        await pilot.press("n")
        assert isinstance(app.screen, EditTextScreen)
        app.screen.query_one("#edit-text").text = "Compare each pair once."
        await pilot.press("ctrl+s")
        await saved(pilot)
        db = sqlite_utils.Database(store.path)
        note = db.execute(
            "select notes.author, notes.text from corrections join notes on notes.id = corrections.note_id "
            "where corrections.id = ?", [store.corrections["sorted"]]
        ).fetchone()
        db.close()
        assert note == ("human", "Compare each pair once.")
        assert "Compare each pair once." in shown(screen, "note")


async def test_mark_several_and_approve_or_reject_them(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        await pilot.press("space", "space")  # marks 1 and 2, the cursor moving down
        assert screen.marked == {store.corrections["sorted"], store.corrections["all_pairs"]}
        await pilot.press("A")
        await saved(pilot)
        assert correction(store.path, store.corrections["sorted"])["status"] == "approved"
        assert correction(store.path, store.corrections["all_pairs"])["status"] == "approved"
        assert correction(store.path, store.corrections["mad_mean"])["status"] == "proposed"
        assert screen.marked == set()
        screen.select(store.corrections["mad_mean"])
        await pilot.press("space", "R")
        await saved(pilot)
        assert correction(store.path, store.corrections["mad_mean"])["status"] == "rejected"
        await pilot.press("u")
        await saved(pilot)
        assert correction(store.path, store.corrections["mad_mean"])["status"] == "proposed"


def notifications(app: LeafeApp) -> list[str]:
    return [notification.message for notification in app._notifications]


async def test_a_locked_store_gives_one_line_and_the_next_press_lands(store):
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_curation(app, pilot, store.leafe_run)
        other_program = sqlite3.connect(store.path, isolation_level=None)
        other_program.execute("BEGIN IMMEDIATE")  # another writer holds the store's lock
        try:
            await pilot.press("a")
            assert screen.writing  # the decision waits in a worker...
            await pilot.press("down")  # ...while the interface answers keys
            assert screen.selected_id() == store.corrections["all_pairs"]
            await saved(pilot)
        finally:
            other_program.rollback()
            other_program.close()
        refused = [message for message in notifications(app) if "not saved" in message]
        assert len(refused) == 1
        assert "\n" not in refused[0] and "locked" in refused[0]
        assert refused[0].startswith(f"Correction {store.corrections['sorted']} approved not saved: store ")
        assert isinstance(app.screen, CurationScreen)
        assert correction(store.path, store.corrections["sorted"])["status"] == "proposed"

        screen.select(store.corrections["sorted"])
        await pilot.press("a")  # the lock is free again: this one lands
        await saved(pilot)
        assert correction(store.path, store.corrections["sorted"])["status"] == "approved"
        assert screen.rows[store.corrections["sorted"]]["status"] == "approved"


@pytest.mark.usefixtures("edits_without_the_environment")
async def test_a_refusal_from_the_core_is_a_notification(store, monkeypatch):
    from store import curation
    from workbench.errors import LeafeError

    def refuse(*args, **kwargs):
        raise LeafeError("the edited action quotes the note")

    monkeypatch.setattr(curation, "decide", refuse)
    app = LeafeApp(store.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        await open_curation(app, pilot, store.leafe_run)
        await pilot.press("e")
        app.screen.query_one("#edit-text").text = "Sort the numbers first."
        await keep_the_edit(pilot)
        await saved(pilot)
        assert isinstance(app.screen, CurationScreen)
        assert f"The edit of correction {store.corrections['sorted']} not kept: the edited action quotes the note" \
            in notifications(app)
    assert correction(store.path, store.corrections["sorted"])["status"] == "proposed"
