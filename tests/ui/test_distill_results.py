"""Distill (train in a worker, live loss, adapters with lineage) and results (Pass@k
table and plot, launching an evaluation)."""

from __future__ import annotations

import json
import sys
import types

import sqlite_utils

from screens.app import LeafeApp
from screens.distill import DistillScreen
from screens.results import ResultsScreen
from screens.widgets.loss_plot import LossPlot, PassAtKPlot
from tests.ui.conftest import SIZE


def fake_distill_module(calls: list[dict]) -> types.ModuleType:
    """Stands in for workbench.distill: the screen only relies on train_adapter's contract."""
    module = types.ModuleType("workbench.distill")

    def train_adapter(db, *, dataset_path, dataset_id, settings, model, name, output, run_id,
                      kind="leafe", progress, cancel):
        calls.append({"dataset_path": dataset_path, "dataset_id": dataset_id, "settings": settings,
                      "name": name, "run_id": run_id, "kind": kind})
        progress.start("distill", 3, "distill: 3 steps")
        for loss in (1.5, 1.0, 0.5):
            progress.advance(1, loss=loss)
        progress.finish()
        adapter_id = db["adapters"].insert({
            "run_id": run_id, "name": name, "path": f"adapters/{name}", "base_model": model.name,
            "dataset_id": dataset_id, "kind": kind, "metrics": json.dumps({"final_loss": 0.5}),
            "lineage": json.dumps({"run": run_id, "dataset": "leafe-run-1", "corrections": [4]}),
        }).last_pk
        db["train_log"].insert_all({"adapter_id": adapter_id, "step": step, "loss": loss}
                                   for step, loss in ((1, 1.5), (2, 1.0), (3, 0.5)))
        return adapter_id

    module.train_adapter = train_adapter
    return module


async def test_distill_trains_in_a_worker_and_lists_the_adapter(store, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setitem(sys.modules, "workbench.distill", fake_distill_module(calls))
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DistillScreen)
        assert "1 example (1 approved" in str(screen.query_one("#example-count").render())
        table = screen.query_one("#adapters")
        assert table.row_count == 1
        assert "run 1 · dataset leafe-run-1 · corrections 4" in [str(c) for c in table.get_row_at(0)]
        assert len(screen.query_one(LossPlot).points) == 10  # the stored adapter's curve
        screen.query_one("#lora-r").value = "8"
        await pilot.press("ctrl+s")
        await screen.workers.wait_for_complete()
        await pilot.pause()
        assert table.row_count == 2
        assert screen.query_one(LossPlot).points == [(1, 1.5), (2, 1.0), (3, 0.5)]
    (call,) = calls
    assert call["name"] == "leafe-run-1-2" and call["run_id"] == store.leafe_run
    assert call["settings"].lora_r == 8 and call["settings"].lora_alpha == 32
    with open(call["dataset_path"]) as handle:  # the approved correction, exported
        examples = [json.loads(line) for line in handle]
    assert [example["correction_id"] for example in examples] == [store.corrections["mad_approved"]]


async def test_results_show_pass_at_k_and_launch_an_evaluation(store, monkeypatch):
    import workbench.pipeline
    from workbench.pipeline import RunResult

    launched: list = []

    def fake_run_pipeline(config, *, db_path, progress, cancel, config_path=""):
        launched.append(config)
        db = sqlite_utils.Database(db_path)
        run_id = db["runs"].insert({"name": "eval", "status": "finished", "stages": '["evaluate"]'}).last_pk
        for k, value in ((1, 0.4), (2, 0.6)):
            db["evals"].insert({"run_id": run_id, "policy": "base", "k": k, "pass_at_k": value,
                                "ci_low": 0.1, "ci_high": 0.9, "n_tasks": 3})
        db.close()
        progress.start("evaluate", 2, "evaluate")
        progress.advance(2)
        return RunResult(run_id, "finished")

    monkeypatch.setattr(workbench.pipeline, "run_pipeline", fake_run_pipeline)
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ResultsScreen)
        table = screen.query_one("#evals")
        assert table.row_count == 6
        cells = [str(c) for c in table.get_row_at(2)]
        assert cells[1:5] == ["adapter:leafe-run-1", "4", "0.920", "0.72–1.00"]
        assert set(screen.query_one(PassAtKPlot).curves) == {"base", "adapter:leafe-run-1"}
        assert screen.query_one("#eval-policies").value == "base, adapter:leafe-run-1"
        await pilot.press("e")
        await screen.workers.wait_for_complete()
        await pilot.pause()
        assert table.row_count == 2  # the new evaluation run's table
        assert screen.shown_run == 3
        await pilot.press("a")  # every run
        assert table.row_count == 8
    (config,) = launched
    assert config.stages.run == ["evaluate"]
    assert config.evaluate.policies == ["base", "adapter:leafe-run-1"] and config.evaluate.n == 4
