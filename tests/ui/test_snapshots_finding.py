"""Snapshots of the screens the day of curation added: search across runs with its hits,
the new-run form filled from a config, and the tree filtered to episodes with corrections.

Update after an intended change with `pytest tests/ui/test_snapshots_finding.py --snapshot-update`
and look at the report before committing.
"""

from __future__ import annotations

from textual.widgets import Input

from screens.app import LeafeApp
from tests.ui.conftest import SIZE
from tests.ui.test_new_run_form import CONFIG


def test_search_across_runs_with_hits(store, snap_compare):
    async def search(pilot):
        await pilot.press("slash")
        await pilot.pause()
        pilot.app.screen.query_one("#search-query", Input).value = "sorted"
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=search)


def test_new_run_form_filled_from_a_config(tmp_path, snap_compare):
    (tmp_path / "day.toml").write_text(CONFIG)

    async def load(pilot):
        await pilot.press("n")
        await pilot.pause()
        pilot.app.screen.query_one("#config-path", Input).value = "day.toml"  # relative: a stable picture
        await pilot.press("enter")
        await pilot.pause()
        pilot.app.screen.query_one("#live-tree").focus()  # no blinking text cursor in the picture
        await pilot.pause()

    assert snap_compare(LeafeApp(tmp_path / "form.db"), terminal_size=SIZE, run_before=load)


def test_tree_filtered_to_corrections_sorted_by_gain(store, snap_compare):
    async def filtered(pilot):
        pilot.app.open_run(store.leafe_run)
        await pilot.pause()
        for key in ("m", "g", "s"):
            await pilot.press(key)
            await pilot.pause()

    assert snap_compare(LeafeApp(store.path), terminal_size=SIZE, run_before=filtered)
