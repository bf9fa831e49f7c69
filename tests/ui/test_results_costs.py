"""The Results screen lists what each stage of the shown run cost: wall time, tokens
generated, environment steps and peak memory; stages that never ran are left out."""

from __future__ import annotations

import json

import sqlite_utils

from screens.app import LeafeApp
from screens.results import ResultsScreen
from tests.ui.conftest import SIZE, open_run_screen


def add_costs(path, run_id: int) -> None:
    db = sqlite_utils.Database(path)
    db.execute("insert or replace into run_stages (run_id, stage, position, status) values (?, 'explore', 90, 'finished')",
               [run_id])
    db.execute("insert or replace into run_stages (run_id, stage, position, status) values (?, 'evaluate', 91, 'pending')",
               [run_id])
    db.execute("""update run_stages set wall_time = 75.0, tokens = 1234, env_steps = 42, peak_rss = ?
                  where run_id = ? and position = 90""", [512 * 2**20, run_id])
    db.conn.commit()
    db.close()


async def test_stage_costs_show_with_the_diagnostics(store):
    add_costs(store.path, store.leafe_run)
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "p", ResultsScreen)
        text = str(screen.query_one("#diagnostics").render())
        assert "explore: 1 min 15 s, 1,234 tokens, 42 env steps, peak 512 MiB" in text
        assert "evaluate:" not in text  # pending: it has cost nothing yet


async def test_without_recorded_costs_nothing_is_listed(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "p", ResultsScreen)
        assert "Stage costs" not in str(screen.query_one("#diagnostics").render())


async def test_the_runs_splits_show_with_how_many_test_tasks_are_held_out(store):
    db = sqlite_utils.Database(store.path)
    splits = {"training": ["a", "b"], "validation": ["c"], "test": ["b", "d", "e"],
              "overlap": {"b": "training"}, "same_start": {"d": "a"}, "held_out": 1}
    db.execute("update runs set splits = ? where id = ?", [json.dumps(splits), store.leafe_run])
    db.conn.commit()
    db.close()
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "p", ResultsScreen)
        text = str(screen.query_one("#diagnostics").render())
        assert "Splits: 2 training, 1 validation, 3 test tasks; 1 test tasks held out (not held out: b, d)" in text
