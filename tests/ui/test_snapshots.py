"""Snapshots of the main screens on the deterministic fixture store (fixed timestamps).

Update after an intended change with `pytest tests/ui/test_snapshots.py --snapshot-update`
and look at the report before committing.
"""

from __future__ import annotations

from screens.app import LeafeApp
from tests.ui.conftest import SIZE


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
    async def open_curation(pilot):
        pilot.app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()

    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=open_curation)


def test_results(store, snap_compare):
    async def open_results(pilot):
        pilot.app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()

    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=open_results)
