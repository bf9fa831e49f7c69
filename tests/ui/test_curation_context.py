"""Curation with context: the task, the history before tau (collapsible) and both outcomes
beside the correction; an edited action is played from tau and its result shown before
anything is kept, then the policy continues from it, so the export trains on a
continuation that answers the edit (and an undo brings the old branch back)."""

from __future__ import annotations

import json

import sqlite_utils
from textual.widgets import Collapsible, TextArea

from screens.app import LeafeApp
from screens.curation import CurationScreen
from screens.modals import EditPreviewScreen, EditTextScreen
from store.db import open_store, transaction
from store.steps import insert as insert_node
from tests.ui.conftest import SIZE, open_run_screen, until


def add_correction(path) -> dict:
    """In the explored guessing run (secret 3, guesses 5, 2, 3): a note on the guess 2 and a
    branch that guessed 4 there instead, proposed as a correction."""
    db = open_store(path)
    with transaction(db):
        episode = db.execute("select episodes.id from episodes join tasks on tasks.id = episodes.task_id "
                             "where tasks.name = 'guess/0'").fetchone()[0]
        steps = {row["depth"]: row["id"] for row in db.query(
            "select id, depth from nodes where episode_id = ? order by depth", [episode])}
        note = db["notes"].insert({"node_id": steps[2], "rollback_node_id": steps[2], "author": "template",
                                   "text": "The secret is above two."}).last_pk
        branch = insert_node(db, episode_id=episode, parent_id=steps[1], depth=2, action="4",
                             observation="Wrong, go lower.", feedback={"guess": 4, "hint": "lower"}, score=0.9,
                             done=False, success=False, tokens=1, note_id=note, branch_depth=1)
        correction = db["corrections"].insert({"note_id": note, "tau_node_id": steps[2], "leaf_node_id": branch,
                                               "status": "proposed"}).last_pk
    db.close()
    return {"correction": correction, "branch": branch, "tau": steps[2]}


def shown(screen, widget_id: str) -> str:
    return str(screen.query_one(f"#{widget_id}").render())


async def test_the_task_history_and_both_outcomes_show_beside_the_correction(explored_store):
    add_correction(explored_store)
    app = LeafeApp(explored_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, 1, "c", CurationScreen)
        context = screen.query_one("#curation-context", Collapsible)
        assert context.collapsed and "guess/0" in str(context.title) and "1 steps before τ" in str(context.title)
        history = shown(screen, "history-before")
        assert "Guess a number from 0 to 9." in history and "step 1: 5" in history and "Wrong, go lower." in history
        assert "Original path: (step 2) ✗ not solved · score 0.90" in shown(screen, "original-outcome")
        assert "Corrected branch: (step 2) ✗ not solved · score 0.90" in shown(screen, "branch-outcome")


async def test_an_edit_is_played_from_tau_shown_then_continued_by_the_policy(explored_store):
    ids = add_correction(explored_store)
    app = LeafeApp(explored_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, 1, "c", CurationScreen)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EditTextScreen)
        app.screen.query_one("#edit-text", TextArea).text = "1"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, EditPreviewScreen), "the edit was played from τ")
        preview = app.screen
        assert "Wrong, go higher." in shown(preview, "preview-observation")
        assert "✗ not solved · score 0.80" in shown(preview, "preview-outcome")
        db = sqlite_utils.Database(explored_store)
        nodes_before = db["nodes"].count
        await pilot.press("e")  # edit again: nothing was stored by the preview
        await pilot.pause()
        assert isinstance(app.screen, EditTextScreen) and app.screen.query_one("#edit-text", TextArea).text == "1"
        assert db["nodes"].count == nodes_before
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, EditPreviewScreen), "played again")
        await pilot.press("y")
        await until(pilot, lambda: screen.rows[ids["correction"]]["status"] == "edited", "the edit was kept")
        # The policy went on from the edited step: the scripted guess after it is 3, which is right.
        assert "Corrected branch: (step 3) ✓ solved · score 1.00" in shown(screen, "branch-outcome")
        await pilot.press("u")  # undo: the earlier branch is the continuation again
        await until(pilot, lambda: screen.rows[ids["correction"]]["status"] == "proposed", "undone")
        assert "Corrected branch: (step 2)" in shown(screen, "branch-outcome")
        await pilot.press("u")  # nothing left: the undo itself is not undone
    row = db.execute("select status, leaf_node_id from corrections where id = ?", [ids["correction"]]).fetchone()
    assert row == ("proposed", ids["branch"])
    db.close()


def test_an_edit_kept_from_tau_exports_its_own_continuation(explored_store):
    from workbench.config import config_from_dict
    from workbench.curate import keep_edit
    from workbench.export import export_dataset

    ids = add_correction(explored_store)
    assert keep_edit(str(explored_store), ids["correction"], "1", reviewer="ada") == "edited"
    db = open_store(explored_store)
    stored = json.loads(db["runs"].get(1)["config"])

    def exported(continuation: bool, path: str) -> list[str]:
        config = config_from_dict({**stored, "export": {**stored.get("export", {}), "continuation": continuation}})
        dataset, left_out, _ = export_dataset(db, config, 1, path=path, correction_ids=[ids["correction"]])
        assert (dataset.n_examples, left_out) == (1, [])
        with open(path) as lines:
            (example,) = [json.loads(line) for line in lines]
        return [m["content"] for m in example["messages"][example["target_start"]:] if m["role"] == "assistant"]

    assert exported(True, "whole.jsonl") == ["1", "3"]  # the edit, then the policy's answer to it
    assert exported(False, "pair.jsonl") == ["1"]  # by default the edited action alone
    db.close()
