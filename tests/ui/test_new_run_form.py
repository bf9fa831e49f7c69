"""Item 4 of the day of curation: a form filled from a config never changes the run, and
`l` opens the run going on now rather than a new-run form."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Checkbox, Input

from screens.app import LeafeApp
from screens.episode import EpisodeScreen
from screens.live import LiveScreen
from screens.runs import RunsScreen
from store import queries
from store.db import open_store, transaction
from tests.ui.conftest import SIZE

CONFIG = """[env]
kind = "coding"
suite = "humaneval"
tasks = ["HumanEval/1", "HumanEval/3"]
max_steps = 3

[explore]
rollouts_per_task = 2

[reflect]
reflector = "template"

[export]
name = "day-one"

[stages]
run = ["explore", "reflect", "backtrack", "curate", "export"]
"""


async def load(app: LeafeApp, pilot, config: Path) -> LiveScreen:
    await pilot.press("n")
    screen = app.screen
    assert isinstance(screen, LiveScreen)
    screen.query_one("#config-path", Input).value = str(config)
    screen.query_one("#config-path", Input).focus()
    await pilot.press("enter")
    await pilot.pause()
    return screen


def without_store(config: dict) -> dict:
    return {key: value for key, value in config.items() if key != "store"}


async def test_a_loaded_config_runs_every_stage_and_key_as_written(tmp_path):
    from workbench.config import load_config, resolved

    path = tmp_path / "day.toml"
    path.write_text(CONFIG)
    app = LeafeApp(tmp_path / "form.db")
    async with app.run_test(size=SIZE) as pilot:
        screen = await load(app, pilot, path)
        boxes = {box.name: box.value for box in screen.query(".stage-choice").results(Checkbox)}
        assert boxes["export"] is True  # a stage the form had no checkbox for
        assert [name for name, checked in boxes.items() if checked] == [
            "explore", "reflect", "backtrack", "curate", "export"]
        # Nothing touched: what runs is the file, every key and default.
        assert without_store(resolved(screen.form_config())) == without_store(resolved(load_config(path)))
        # The task list is read whole, on a row of its own (not cut beside max_steps).
        tasks = screen.query_one("#env-tasks", Input)
        assert tasks.value == "HumanEval/1, HumanEval/3"
        assert tasks.content_region.width > len(tasks.value)
        assert tasks.region.y != screen.query_one("#max-steps", Input).region.y
        # What a person changes does override the file, and only that.
        screen.query_one("#max-steps", Input).value = "5"
        screen.query_one("#stage-curate", Checkbox).value = False
        config = resolved(screen.form_config())
        assert config["env"]["max_steps"] == 5 and config["env"]["tasks"] == ["HumanEval/1", "HumanEval/3"]
        assert config["stages"]["run"] == ["explore", "reflect", "backtrack", "export"]
        assert config["export"]["name"] == "day-one"


async def test_a_config_without_the_usual_stages_gets_their_boxes_in_pipeline_order(tmp_path):
    path = tmp_path / "late.toml"
    path.write_text('[env]\nkind = "coding"\ntasks = 1\n[stages]\nrun = ["explore", "export", "distill"]\n')
    app = LeafeApp(tmp_path / "form.db")
    async with app.run_test(size=SIZE) as pilot:
        screen = await load(app, pilot, path)
        names = [box.name for box in screen.query(".stage-choice").results(Checkbox)]
        assert names == ["explore", "reflect", "backtrack", "curate", "export", "distill"]
        screen.query_one("#stage-reflect", Checkbox).value = True
        assert screen.form_config().stages.run == ["explore", "reflect", "export", "distill"]


async def test_l_opens_the_run_going_on_now(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("l")
        await pilot.pause()
        # Nothing runs: a line says so, and no form opens in its place.
        assert isinstance(app.screen, RunsScreen)
        assert any("No run is running" in str(n.message) for n in app._notifications)
        db = open_store(store.path)
        with transaction(db):
            run_id = queries.create_run(db, config={}, stages=["explore"], name="batch-now")
        db.close()
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, EpisodeScreen) and app.screen.run_id == run_id
        await pilot.press("l")  # already there: stays
        await pilot.pause()
        assert len(app.screen_stack) == 2
