"""Evaluation belongs to its run: evaluating from the Results screen records the results
under the run the screen was opened from, as an evaluation of its own, after the overlap
check of the chosen tasks; and two policies compare task by task."""

from __future__ import annotations

import sqlite_utils

from screens.app import LeafeApp
from screens.results import ResultsScreen
from screens.task_by_task import TaskByTaskScreen, TaskEpisodesScreen
from store.db import open_store, transaction
from store.episodes import create as create_episode
from store.steps import insert as insert_node
from tests.ui.conftest import SIZE, open_run_screen, until


def shown(screen, widget_id: str) -> str:
    return str(screen.query_one(f"#{widget_id}").render())


async def test_an_evaluation_from_results_is_recorded_under_its_run(explored_store):
    app = LeafeApp(explored_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, 1, "p", ResultsScreen)
        screen.query_one("#eval-policies").value = "base"
        screen.query_one("#eval-n").value = "1"
        screen.query_one("#eval-tasks").value = "guess/0"
        await pilot.pause()
        assert "Held out" in shown(screen, "eval-held-out")
        await pilot.press("e")
        await until(pilot, lambda: not screen.busy, "the evaluation ended")
        await pilot.pause()
        assert screen.shown_run == 1 and "run 1" in screen.sub_title
        table = screen.query_one("#evals")
        assert table.row_count == 1
        assert [str(cell) for cell in table.get_row_at(0)][:3] == ["1", "base", "1"]
        evaluations = shown(screen, "evaluations")
        assert "#1 finished" in evaluations and "base" in evaluations and "1 tasks" in evaluations
    db = sqlite_utils.Database(explored_store)
    assert db["runs"].count == 1  # no new, unnamed run
    (row,) = db.query("select run_id, policies, tasks, n, seed, status from evaluations")
    assert row == {"run_id": 1, "policies": '["base"]', "tasks": '["guess/0"]', "n": 1, "seed": 1000,
                   "status": "finished"}
    assert db.execute("select count(*) from eval_results where run_id = 1").fetchone()[0] == 1


async def test_the_overlap_check_names_tasks_an_adapter_trained_on(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, store.leafe_run, "p", ResultsScreen)
        screen.query_one("#eval-tasks").value = "HumanEval/0, HumanEval/4"
        await pilot.pause()
        line = shown(screen, "eval-held-out")
        assert line.startswith("Not held out") and "adapter:leafe-run-1 trained on 1 (HumanEval/4)" in line
        screen.query_one("#eval-tasks").value = "HumanEval/0"
        await pilot.pause()
        assert shown(screen, "eval-held-out").startswith("Held out")


def add_changes_and_episodes(path, run_id: int) -> None:
    """The adapter fixes HumanEval/0 (0/4 -> 4/4) and breaks HumanEval/4 (3/4 -> 0/4); each
    policy has one evaluation episode of HumanEval/0."""
    db = open_store(path)
    with transaction(db):
        db.execute("update eval_results set c = 0 where policy = 'base' and task_id = 1")
        db.execute("update eval_results set c = 4 where policy = 'adapter:leafe-run-1' and task_id = 1")
        db.execute("update eval_results set c = 0 where policy = 'adapter:leafe-run-1' and task_id = 3")
        for policy, action, solved in (("base", "return False", False), ("adapter:leafe-run-1", "return True", True)):
            episode, root = create_episode(db, run_id=run_id, task_id=1, purpose="evaluate", rollout=0,
                                           policy=policy, observation="Write has_close_elements.")
            insert_node(db, episode_id=episode, parent_id=root, depth=1, action=action,
                        observation="7 of 7 passed." if solved else "3 of 7 passed.", feedback={},
                        score=1.0 if solved else 0.43, done=True, success=solved, tokens=2)
            db["episodes"].update(episode, {"status": "finished", "success": int(solved), "steps": 1})
    db.close()


async def test_task_by_task_marks_fixed_and_broken_sorts_and_opens_episodes(store):
    add_changes_and_episodes(store.path, store.leafe_run)
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        results = await open_run_screen(pilot, store.leafe_run, "p", ResultsScreen)
        await pilot.press("t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TaskByTaskScreen)
        table = screen.query_one("#task-table")
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows == [["HumanEval/0", "0/4", "4/4", "+1.00", "fixed"],
                        ["HumanEval/4", "3/4", "0/4", "-0.75", "broken"],
                        ["HumanEval/2", "2/4", "2/4", "+0.00", "unchanged"]]
        assert "1 fixed, 1 broken, 1 unchanged" in shown(screen, "task-info")
        await pilot.press("s")  # by task name
        assert [str(table.get_row_at(i)[0]) for i in range(3)] == ["HumanEval/0", "HumanEval/2", "HumanEval/4"]
        await pilot.press("s")  # by gain, largest first
        assert [str(table.get_row_at(i)[4]) for i in range(3)] == ["fixed", "unchanged", "broken"]
        table.move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause()
        episodes = app.screen
        assert isinstance(episodes, TaskEpisodesScreen)
        left, right = shown(episodes, "episodes-0"), shown(episodes, "episodes-1")
        assert "✗ not solved" in left and "return False" in left
        assert "✓ solved" in right and "return True" in right
        await pilot.press("escape", "escape")
        assert app.screen is results


async def test_task_by_task_needs_two_evaluated_policies(explored_store):
    app = LeafeApp(explored_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run_screen(pilot, 1, "p", ResultsScreen)
        await pilot.press("t")
        await pilot.pause()
        assert app.screen is screen
