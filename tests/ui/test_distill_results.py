"""Distill (train in a worker, live loss, adapters with lineage) and results (Pass@k
table and plot, launching an evaluation)."""

from __future__ import annotations

import json

import sqlite_utils

import workbench.distill.stage
from screens.app import LeafeApp
from screens.distill import DistillScreen
from screens.results import ResultsScreen
from screens.widgets.loss_plot import LossPlot, PassAtKPlot
from tests.ui.conftest import SIZE, open_run_screen, until
from workbench.errors import Cancelled


def fake_train_adapter(calls: list[dict], *, until_cancelled: bool = False):
    """Stands in for workbench.distill.stage.train_adapter: the screen relies on its contract only.
    With `until_cancelled`, it trains one step, then waits for the cancel key."""

    def train_adapter(db, *, dataset_path, dataset_id, settings, model, name, output, run_id,
                      kind="leafe", progress, cancel):
        calls.append({"dataset_path": dataset_path, "dataset_id": dataset_id, "settings": settings,
                      "name": name, "output": output, "run_id": run_id, "kind": kind})
        progress.start("distill", 3, "distill: 3 steps")
        if until_cancelled:
            progress.advance(1, loss=1.5)
            assert cancel.wait(30), "the cancel key never reached training"
            raise Cancelled()
        for loss in (1.5, 1.0, 0.5):
            progress.advance(1, loss=loss)
        progress.finish()
        adapter_id = db["adapters"].insert({
            "run_id": run_id, "name": name, "path": output, "base_model": model.name,
            "dataset_id": dataset_id, "kind": kind, "metrics": json.dumps({"final_loss": 0.5}),
            "lineage": json.dumps({"run_id": run_id, "dataset_name": "leafe-run-1", "correction_ids": [4]}),
        }).last_pk
        db["train_log"].insert_all({"adapter_id": adapter_id, "step": step, "loss": loss}
                                   for step, loss in ((1, 1.5), (2, 1.0), (3, 0.5)))
        return adapter_id

    return train_adapter


def shown(screen, widget_id: str) -> str:
    return str(screen.query_one(f"#{widget_id}").render())


def adapter_count(path) -> int:
    db = sqlite_utils.Database(path)
    try:
        return db["adapters"].count
    finally:
        db.close()


async def open_distill(app: LeafeApp, pilot, run_id: int) -> DistillScreen:
    return await open_run_screen(pilot, run_id, "d", DistillScreen)


async def test_distill_trains_in_a_worker_and_lists_the_adapter(store, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(workbench.distill.stage, "train_adapter", fake_train_adapter(calls))
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_distill(app, pilot, store.leafe_run)
        assert shown(screen, "example-count").startswith("1 example: 1 approved, 0 edited, rehearsal off")
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
    # In the store's own folder, beside it: <store file>-files/adapters/<name>.
    assert call["output"] == str(store.path.resolve().parent / f"{store.path.name}-files" / "adapters" / "leafe-run-1-2")
    assert call["settings"].lora_r == 8 and call["settings"].lora_alpha == 32
    with open(call["dataset_path"]) as handle:  # the approved correction, exported
        examples = [json.loads(line) for line in handle]
    assert [example["correction_id"] for example in examples] == [store.corrections["mad_approved"]]


async def test_distill_on_an_exported_dataset(store, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(workbench.distill.stage, "train_adapter", fake_train_adapter(calls))
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_distill(app, pilot, store.leafe_run)
        await pilot.click("#source-dataset")
        await pilot.pause()
        assert screen.source() == "dataset"
        assert shown(screen, "example-count") == "1 example in runs/run-1/corrections.jsonl"
        assert "leafe-run-1 (1 example)" in str(screen.query_one("#dataset SelectCurrent #label").render())
        screen.query_one("#adapter-name").value = "from-dataset"
        await pilot.press("ctrl+s")
        await screen.workers.wait_for_complete()
        await pilot.pause()
        table = screen.query_one("#adapters")
        assert {str(table.get_row_at(i)[0]) for i in range(table.row_count)} == {"leafe-run-1", "from-dataset"}
    (call,) = calls
    assert call["dataset_id"] == 1 and call["dataset_path"] == "runs/run-1/corrections.jsonl"
    assert call["name"] == "from-dataset"
    assert adapter_count(store.path) == 2


async def test_the_cancel_key_stops_training_and_stores_no_adapter(store, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(workbench.distill.stage, "train_adapter", fake_train_adapter(calls, until_cancelled=True))
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_distill(app, pilot, store.leafe_run)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen.query_one(LossPlot).points == [(1, 1.5)], "the first loss plotted")
        assert screen.training
        await pilot.press("ctrl+x")
        await until(pilot, lambda: not screen.training, "training stopped")
        await pilot.pause()
        assert shown(screen, "distill-status") == "Training cancelled; no adapter was stored."
        assert screen.query_one("#adapters").row_count == 1
    assert len(calls) == 1 and adapter_count(store.path) == 1


async def test_results_show_pass_at_k_and_launch_an_evaluation(store, monkeypatch):
    import workbench.evaluate

    launched: list = []

    def fake_evaluate_in_run(db_path, run_id, *, policies, n, tasks=None, progress=None, cancel=None):
        launched.append((run_id, list(policies), n, tasks))
        db = sqlite_utils.Database(db_path)
        db.execute("delete from evals where run_id = ? and policy = 'base'", [run_id])
        for k, value in ((1, 0.4), (2, 0.6)):
            db["evals"].insert({"run_id": run_id, "policy": "base", "k": k, "pass_at_k": value,
                                "ci_low": 0.1, "ci_high": 0.9, "n_tasks": 3})
        db.conn.commit()
        db.close()
        progress.start("evaluate", 2, "evaluate")
        progress.advance(2)
        return {"run_id": run_id, "evaluation_id": 1, "tasks": 3, "n": n}

    monkeypatch.setattr(workbench.evaluate, "evaluate_in_run", fake_evaluate_in_run)
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
        # The results stay the run's: its title, its table (base's rows replaced, the adapter's kept).
        assert screen.shown_run == store.leafe_run and f"run {store.leafe_run}" in screen.sub_title
        assert table.row_count == 5
        assert {str(table.get_row_at(i)[0]) for i in range(table.row_count)} == {str(store.leafe_run)}
        await pilot.press("a")  # every run: still the one run
        assert table.row_count == 5
    assert launched == [(store.leafe_run, ["base", "adapter:leafe-run-1"], 4, None)]
