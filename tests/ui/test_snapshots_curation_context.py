"""Snapshots of the screens the third part of the day of curation added: two policies task
by task, and one task's evaluation episodes side by side.

Update after an intended change with
`pytest tests/ui/test_snapshots_curation_context.py --snapshot-update` and look at the
report before committing.
"""

from __future__ import annotations

from screens.app import LeafeApp
from tests.ui.conftest import SIZE
from tests.ui.test_evaluation_of_run import add_changes_and_episodes


def test_task_by_task(store, snap_compare):
    add_changes_and_episodes(store.path, store.leafe_run)

    async def compare(pilot):
        pilot.app.open_run(store.leafe_run)
        await pilot.pause()
        for key in ("p", "t"):
            await pilot.press(key)
            await pilot.pause()

    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=compare)


def test_task_episodes_side_by_side(store, snap_compare):
    add_changes_and_episodes(store.path, store.leafe_run)

    async def opened(pilot):
        pilot.app.open_run(store.leafe_run)
        await pilot.pause()
        for key in ("p", "t", "enter"):
            await pilot.press(key)
            await pilot.pause()

    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=opened)
