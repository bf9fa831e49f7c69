"""Snapshots of the main screens on the deterministic fixture store (fixed timestamps).

Update after an intended change with `pytest tests/ui/test_snapshots.py --snapshot-update`
and look at the report before committing.
"""

from __future__ import annotations

from screens.app import LeafeApp
from tests.ui.conftest import SIZE, until


def open_run_and_press(store, key: str):
    """Open the fixture's LEAFE run, then press `key` (a screen's key)."""

    async def run_before(pilot):
        pilot.app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()

    return run_before


def test_runs_screen(store, snap_compare):
    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE)


def test_episode_tree_with_a_note_and_a_branch(store, snap_compare):
    async def open_tree(pilot):
        app = pilot.app
        app.open_run(store.leafe_run)
        await pilot.pause()
        tree = app.screen.query_one("#tree")
        node = tree.reveal(store.steps["close_s2"])
        tree.expand_node(node)
        tree.move_cursor_now(tree.step_nodes[store.steps["close_b1"]])
        await pilot.pause()

    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=open_tree)


def test_curation_with_a_diff(store, snap_compare):
    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=open_run_and_press(store, "c"))


def test_results(store, snap_compare):
    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=open_run_and_press(store, "p"))


def test_distill(store, snap_compare):
    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=open_run_and_press(store, "d"))


def test_live_run_after_a_scripted_run(tmp_path, snap_compare):
    (tmp_path / "guess.jsonl").write_text(
        '{"task_id": "guess/0", "actions": ["5", "2", "3"]}\n{"task_id": "guess/1", "actions": ["7"]}\n'
    )

    async def run_from_the_form(pilot):
        app = pilot.app
        await pilot.press("n")
        screen = app.screen
        for widget_id, value in (("env-kind", "tests.fixtures.guess_env:GuessEnvironment"), ("env-suite", ""),
                                 ("env-tasks", "2"), ("max-steps", "3"), ("model-script", "guess.jsonl")):
            screen.query_one(f"#{widget_id}").value = value
        screen.query_one("#model-backend").value = "scripted"
        screen.query_one("#stage-reflect").value = False
        screen.query_one("#stage-backtrack").value = False
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.running, "the run finished")
        screen.query_one("#live-tree").focus()  # no blinking text cursor in the picture
        await pilot.pause()

    assert snap_compare(LeafeApp(tmp_path / "live.db"), terminal_size=SIZE, run_before=run_from_the_form)


def test_help_lists_the_keys_of_the_episode_screen(store, snap_compare):
    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=open_run_and_press(store, "question_mark"))
