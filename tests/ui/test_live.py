"""Live runs started from the form: a real pipeline (scripted policy) whose steps the test
releases one at a time, so the tree is seen growing mid-run and the cancel key stops it."""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils
from textual.widgets import Checkbox, Input, Select

from screens.app import LeafeApp
from screens.live import LiveScreen
from screens.runs import RunsScreen
from tests.ui.conftest import SIZE, until

GATED_ENV = "tests.ui.envs:GatedGuessEnvironment"


def write_script(folder: Path, actions: dict[str, list[str]]) -> str:
    (folder / "guess.jsonl").write_text(
        "".join(json.dumps({"task_id": task, "actions": steps}) + "\n" for task, steps in actions.items())
    )
    return "guess.jsonl"  # relative: the test's working directory is its temporary folder


async def open_live(app: LeafeApp, pilot) -> LiveScreen:
    await pilot.press("n")
    assert isinstance(app.screen, LiveScreen)
    return app.screen


def fill_form(screen: LiveScreen, *, script: str, tasks: str, max_steps: str, stages: set[str]) -> None:
    """What a person types into the form: no config file."""
    assert screen.query_one("#config-path", Input).value == ""
    for widget_id, value in (("env-kind", GATED_ENV), ("env-suite", ""), ("env-tasks", tasks),
                             ("max-steps", max_steps), ("rollouts", "1"), ("model-name", "embedded"),
                             ("model-script", script)):
        screen.query_one(f"#{widget_id}", Input).value = value
    screen.query_one("#model-backend", Select).value = "scripted"
    for stage in ("explore", "reflect", "backtrack", "curate"):
        screen.query_one(f"#stage-{stage}", Checkbox).value = stage in stages


def status_text(screen: LiveScreen) -> str:
    return str(screen.query_one("#live-status").render())


def rows(path: Path, sql: str) -> list[tuple]:
    db = sqlite_utils.Database(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def test_a_run_from_the_form_stores_the_run_its_config_and_episodes(tmp_path, gated):
    # guess/0's secret is 3: three wrong guesses, then the branches guess 3.
    # guess/1's secret is 7: right at once.
    script = write_script(tmp_path, {"guess/0": ["5", "2", "4", "3"], "guess/1": ["7"]})
    gated.open()
    db_path = tmp_path / "live.db"
    app = LeafeApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_live(app, pilot)
        fill_form(screen, script=script, tasks="2", max_steps="3", stages={"explore", "reflect", "backtrack"})
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.running, "the run finished")
        await pilot.pause()
        assert "Run 1 finished" in status_text(screen)
        assert screen.sub_title == "run 1 · finished"  # an unnamed run is not "run 1 run 1"
        tree = screen.query_one("#live-tree")
        assert set(tree.episode_nodes) == {1, 2}
        assert "guess/1" in str(tree.episode_nodes[2].label) and "✓ passed" in str(tree.episode_nodes[2].label)

    (run,) = rows(db_path, "select id, status, stages, config, config_path from runs")
    assert run[1] == "finished"
    assert json.loads(run[2]) == ["explore", "reflect", "backtrack"]
    config = json.loads(run[3])
    assert config["env"]["kind"] == GATED_ENV and config["env"]["tasks"] == 2 and config["env"]["max_steps"] == 3
    assert config["model"]["backend"] == "scripted" and config["model"]["script"] == script
    assert config["stages"]["run"] == ["explore", "reflect", "backtrack"]
    assert run[4] in ("", None)  # started from the form, not from a file
    episodes = rows(db_path, """select tasks.name, episodes.status, episodes.success, episodes.steps
                                from episodes join tasks on tasks.id = episodes.task_id
                                where episodes.purpose = 'explore' order by tasks.name""")
    assert episodes == [("guess/0", "finished", 0, 3), ("guess/1", "finished", 1, 1)]
    originals = rows(db_path, """select action from nodes join episodes on episodes.id = nodes.episode_id
                                 join tasks on tasks.id = episodes.task_id
                                 where tasks.name = 'guess/0' and branch_depth = 0 and depth > 0 order by depth""")
    assert [action for (action,) in originals] == ["5", "2", "4"]
    assert rows(db_path, "select count(*) from notes")[0][0] >= 1  # reflect wrote a note on guess/0
    branches = rows(db_path, "select action, success from nodes where branch_depth > 0")
    assert branches and all(branch == ("3", 1) for branch in branches)  # backtrack found the secret


async def test_the_tree_grows_while_the_run_goes_and_the_cancel_key_stops_it(tmp_path, gated):
    # guess/0 (secret 3) keeps guessing wrong; guess/1 (secret 7) is right at its first step.
    script = write_script(tmp_path, {"guess/0": ["5", "2", "4"], "guess/1": ["7"]})
    db_path = tmp_path / "live.db"
    app = LeafeApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_live(app, pilot)
        fill_form(screen, script=script, tasks="2", max_steps="3", stages={"explore"})
        await pilot.press("ctrl+s")
        tree = screen.query_one("#live-tree")
        gated.release(1)
        await until(pilot, lambda: gated.reached(2) == 1, "guess/0 waits at its second step")
        await until(pilot, lambda: len(tree.step_nodes) == 2, "both first steps in the tree")

        # Mid-run: the first steps are on screen, the run is not over.
        assert screen.running
        assert rows(db_path, "select status from runs") == [("running",)]
        first_steps = {node.data.id: str(node.label) for node in tree.step_nodes.values()}
        assert len(first_steps) == 2 and all("step 1" in label for label in first_steps.values())
        assert "… running" in str(tree.episode_nodes[1].label)
        assert "✓ passed" in str(tree.episode_nodes[2].label)

        await pilot.press("ctrl+x")
        assert "Cancelling" in status_text(screen)
        gated.release(2)  # the step under way finishes; none after it starts
        await until(pilot, lambda: not screen.running, "the run stopped")
        await pilot.pause()
        assert "Run 1 interrupted" in status_text(screen)
        assert gated.reached(3) == 0
        assert len(tree.step_nodes) == 3  # guess/0's second step arrived too

        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        shown = [str(cell) for cell in app.screen.query_one("#runs-table").get_row_at(0)]
        assert "interrupted" in shown and "1/2" in shown

    assert rows(db_path, "select status from runs") == [("interrupted",)]
    finished = rows(db_path, "select count(*) from episodes where status = 'finished'")[0][0]
    assert finished == 1 < 2  # fewer episodes finished than the two configured
    kept = rows(db_path, """select tasks.name, nodes.depth, nodes.action from nodes
                            join episodes on episodes.id = nodes.episode_id join tasks on tasks.id = episodes.task_id
                            where nodes.depth > 0 order by tasks.name, nodes.depth""")
    assert kept == [("guess/0", 1, "5"), ("guess/0", 2, "2"), ("guess/1", 1, "7")]
