"""Thin screens: one stage runner behind the live, results and distill screens. Each hears
once how its job ended (even a refusal before the run starts), follows the run from the
`run_started` event, and the distill screen shows what it trains on before training."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import sqlite_utils
from textual.widgets import Checkbox

import workbench.distill.stage
import workbench.evaluate
import workbench.pipeline
from screens.app import LeafeApp
from screens.distill import DistillScreen
from screens.live import LiveScreen
from screens.results import ResultsScreen
from tests.ui.conftest import SIZE, open_run_screen, until
from tests.ui.test_distill_results import fake_train_adapter, shown
from workbench.errors import LeafeError
from workbench.pipeline import RunResult


async def test_an_evaluation_refused_before_it_starts_ends_the_evaluating_state(store, monkeypatch):
    def refusing_evaluation(db_path, run_id, **settings):
        raise LeafeError("evaluate.policies: no adapter named 'nowhere' in this store")

    # The Results screen evaluates under its own run (workbench.evaluate.evaluate_in_run).
    monkeypatch.setattr(workbench.evaluate, "evaluate_in_run", refusing_evaluation)
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "p", ResultsScreen)
        rows_before = screen.query_one("#evals").row_count
        await pilot.press("e")
        await until(pilot, lambda: not screen.evaluating, "the evaluation's end reached the screen")
        assert shown(screen, "results-info") == (
            "Evaluation failed: evaluate.policies: no adapter named 'nowhere' in this store")
        assert screen.query_one("#evals").row_count == rows_before  # the table is still the run's
        await pilot.press("e")  # a second try starts: nothing is stuck
        await until(pilot, lambda: not screen.evaluating, "the second try ended")


async def test_the_live_screen_follows_the_run_from_its_started_event(tmp_path, monkeypatch):
    release = threading.Event()
    db_path = tmp_path / "live.db"

    def pipeline(config, *, db_path, progress, cancel, config_path=""):
        # No "run N started" line in the log: the event alone names the run.
        db = sqlite_utils.Database(db_path)
        run_id = db["runs"].insert({"name": "watched", "status": "running", "stages": '["explore"]'}).last_pk
        db.close()
        progress.event("run_started", run_id=run_id)
        assert release.wait(30), "the test never let the run finish"
        return RunResult(run_id, "finished")

    monkeypatch.setattr(workbench.pipeline, "run_pipeline", pipeline)
    app = LeafeApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        screen.query_one("#model-backend").value = "scripted"
        screen.query_one("#model-script").value = "guess.jsonl"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen.run_id == 1, "the run adopted while it runs")
        assert screen.running
        assert "run 1 watched · running" in screen.sub_title
        release.set()
        await until(pilot, lambda: not screen.running, "the run finished")
        assert "Run 1 finished" in shown(screen, "live-status")


def dataset_rows(path: Path) -> list[tuple]:
    db = sqlite_utils.Database(path)
    try:
        return db.execute("select id, name, path, n_examples from datasets order by id").fetchall()
    finally:
        db.close()


async def test_distill_shows_examples_by_kind_and_rehearsal_is_a_visible_toggle(store, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(workbench.distill.stage, "train_adapter", fake_train_adapter(calls))
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "d", DistillScreen)
        rehearsal = screen.query_one("#rehearsal", Checkbox)
        assert not rehearsal.value
        assert shown(screen, "example-count").startswith(
            "1 example: 1 approved, 0 edited, rehearsal off; 3 still proposed")
        rehearsal.value = True
        await pilot.pause()
        count = shown(screen, "example-count")
        assert count.startswith("3 examples: 1 approved, 0 edited, 2 rehearsal"), count
        for widget_id, value in (("epochs", "2"), ("batch-size", "8"), ("learning-rate", "0.001")):
            screen.query_one(f"#{widget_id}").value = value
        screen.query_one("#method").value = "full"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.training and calls, "training finished")
    (call,) = calls
    with open(call["dataset_path"]) as handle:
        kinds = sorted(json.loads(line)["kind"] for line in handle)
    assert kinds == ["correction", "rehearsal", "rehearsal"]  # what the form said, trained on
    settings = call["settings"]
    assert (settings.method, settings.epochs, settings.batch_size, settings.learning_rate) == ("full", 2, 8, 0.001)


async def test_distill_never_rewrites_a_stored_dataset(store, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(workbench.distill.stage, "train_adapter", fake_train_adapter(calls))
    before = dataset_rows(store.path)
    (original,) = before
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "d", DistillScreen)
        assert "writes dataset leafe-run-1-2 (leafe-run-1 is kept)" in shown(screen, "example-count")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.training and calls, "training finished")
        await pilot.pause()
        assert "writes dataset leafe-run-1-3" in shown(screen, "example-count")
    after = dataset_rows(store.path)
    assert after[0] == original
    assert after[1][1] == "leafe-run-1-2" and after[1][2] != original[2]
    assert calls[0]["dataset_id"] == after[1][0]
