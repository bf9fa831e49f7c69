"""The Results screen shows the run's paired comparisons (policy minus reference, with
the paired interval) under the Pass@k table, and marks a policy that was trained on some
of the evaluation tasks; with no comparisons stored, the pairs table stays hidden."""

from __future__ import annotations

import sqlite_utils

from screens.app import LeafeApp
from screens.results import ResultsScreen
from tests.ui.conftest import SIZE, open_run_screen


def add_pairs(path, run_id: int) -> None:
    db = sqlite_utils.Database(path)
    leafe = "adapter:leafe-run-1"
    for k, diff, low, high in ((1, 0.17, 0.04, 0.29), (2, 0.25, -0.05, 0.5)):
        db["eval_pairs"].insert({"run_id": run_id, "policy": leafe, "reference": "base", "k": k, "diff": diff,
                                 "ci_low": low, "ci_high": high, "n_tasks": 3, "overlap_tasks": 1})
    db.execute("update evals set overlap_tasks = 1 where run_id = ? and policy = ?", [run_id, leafe])
    db.conn.commit()
    db.close()


async def test_pairs_and_overlap_marks_show_under_the_pass_at_k_table(store):
    add_pairs(store.path, store.leafe_run)
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "p", ResultsScreen)
        pairs = screen.query_one("#pairs")
        assert pairs.display and pairs.row_count == 2
        first = [str(cell) for cell in pairs.get_row_at(0)]
        assert first[1:] == ["adapter:leafe-run-1 *", "base", "1", "+0.170", "+0.04–+0.29", "3"]
        evals = screen.query_one("#evals")
        policies = {str(evals.get_row_at(i)[1]) for i in range(evals.row_count)}
        assert policies == {"base", "adapter:leafe-run-1 *"}
        info = str(screen.query_one("#results-info").render())
        assert "paired bootstrap" in info and "not a held-out measure" in info


async def test_without_comparisons_the_pairs_table_is_hidden(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "p", ResultsScreen)
        assert not screen.query_one("#pairs").display
        info = str(screen.query_one("#results-info").render())
        assert "paired" not in info and "held-out" not in info
