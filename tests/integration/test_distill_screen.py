"""The distill screen with real training: the embedded model learns a tiny LoRA adapter on
a run's approved corrections, launched from the screen like a person would."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest
import sqlite_utils

from tests.ui.fixture_store import build_fixture_store

pytestmark = pytest.mark.integration

SIZE = (120, 36)


def prepare_store(path: Path) -> tuple[int, list[int]]:
    """The fixture store's LEAFE run with three approved corrections and a short max_length."""
    ids = build_fixture_store(path)
    approved = sorted([ids.corrections["sorted"], ids.corrections["all_pairs"], ids.corrections["mad_approved"]])
    db = sqlite_utils.Database(path)
    for correction_id in approved:
        db["corrections"].update(correction_id, {"status": "approved", "decided_by": "ana"})
    config = json.loads(db["runs"].get(ids.leafe_run)["config"])
    config["distill"] = {"max_length": 128, "batch_size": 2}
    db["runs"].update(ids.leafe_run, {"config": json.dumps(config)})
    db.close()
    return ids.leafe_run, approved


def test_training_from_the_distill_screen_stores_an_adapter_beside_the_store(tmp_path, monkeypatch):
    from screens.app import LeafeApp
    from screens.distill import DistillScreen
    from screens.widgets.loss_plot import LossPlot

    monkeypatch.chdir(tmp_path)
    db_path = tmp_path / "fixture.db"
    run_id, approved = prepare_store(db_path)
    before = {entry.name for entry in tmp_path.iterdir()}
    seen: dict = {}

    async def scenario() -> None:
        app = LeafeApp(db_path, reviewer="ana")
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(run_id)
            await pilot.pause()
            await pilot.press("d")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, DistillScreen)
            seen["count"] = str(screen.query_one("#example-count").render())
            for widget_id, value in (("lora-r", "4"), ("lora-alpha", "8"), ("epochs", "1"),
                                     ("adapter-name", "screen-lora")):
                screen.query_one(f"#{widget_id}").value = value
            await pilot.press("ctrl+s")
            await pilot.pause()
            # Not asserting `screen.training` here: the worker may already have finished or
            # failed by now. The adapter that ctrl+s made is checked below, and the status
            # line says why if it failed.
            await screen.workers.wait_for_complete()
            for _ in range(20):  # the worker's last message reaches the screen
                await pilot.pause()
                if not screen.training:
                    break
            table = screen.query_one("#adapters")
            seen["rows"] = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
            seen["status"] = str(screen.query_one("#distill-status").render())
            seen["plotted"] = list(screen.query_one(LossPlot).points)

    asyncio.run(scenario())

    assert seen["count"].startswith("3 examples: 3 approved, 0 edited, rehearsal off")
    listed = {row[0]: row for row in seen["rows"]}
    assert set(listed) == {"leafe-run-1", "screen-lora"}, seen["status"]
    assert listed["screen-lora"][1:3] == ["leafe", "embedded"] and listed["screen-lora"][3] == "3"
    # The screen exported anew: the run's own leafe-run-1 is kept, the new export is leafe-run-1-2.
    assert "run 1 · dataset leafe-run-1-2 · corrections 1,2,4" in listed["screen-lora"][5]
    assert "screen-lora" in seen["status"]

    db = sqlite_utils.Database(db_path)
    adapter = next(db.query("select * from adapters where name = 'screen-lora'"))
    lineage = json.loads(adapter["lineage"])
    assert lineage["run_id"] == run_id and sorted(lineage["correction_ids"]) == approved
    assert lineage["dataset_id"] == adapter["dataset_id"] and lineage["distill"]["lora_r"] == 4
    assert adapter["run_id"] == run_id and adapter["base_model"] == "embedded"
    dataset = db["datasets"].get(adapter["dataset_id"])
    assert dataset["n_examples"] == 3 and sorted(json.loads(dataset["correction_ids"])) == approved
    losses = [row["loss"] for row in db.query(
        "select loss from train_log where adapter_id = ? order by step", [adapter["id"]])]
    db.close()
    assert losses and all(math.isfinite(loss) for loss in losses)
    assert [loss for _, loss in seen["plotted"]] == pytest.approx(losses)  # the screen shows the stored curve

    # The adapter is adapters/<name> in the store's own folder, and nothing else appeared
    # but the export there.
    own = tmp_path / "fixture.db-files"
    folder = own / "adapters" / "screen-lora"
    assert Path(adapter["path"]).resolve() == folder.resolve()
    assert (folder / "adapter_config.json").is_file()
    assert [entry.name for entry in (own / "adapters").iterdir()] == ["screen-lora"]
    assert Path(dataset["path"]).resolve().parent == (own / "runs" / "run-1").resolve()
    new = {entry.name for entry in tmp_path.iterdir()} - before
    assert new <= {"fixture.db-files", "fixture.db-wal", "fixture.db-shm"}, new
