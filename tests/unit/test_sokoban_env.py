"""The sokoban environment: moves, pushes, goals and dead corners as a policy and a
reflector see them; generated rooms; level files; the solver as expert; exact snapshots.

CORNER is a level given as XSB text (rows and columns counted from 0, walls included):
the box at row 1, column 3 sits between the goal (column 2) and a dead corner (column 4);
the worker starts below the box, at row 2, column 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_script
from workbench.config import EnvConfig, config_from_dict
from workbench.envs import open_suite
from workbench.envs.base import Environment, Task, step_succeeded
from workbench.envs.sokoban import SokobanEnvironment, SokobanSuite, parse_move
from workbench.errors import EnvironmentSetupError

CORNER = "######\n#-.$-#\n#--@-#\n######"
TWO_BOXES = "######\n#----#\n#@$.-#\n#-$.-#\n#----#\n######"
SOLVE_CORNER = ["right", "up", "left"]
INTO_THE_CORNER = ["left", "up", "right"]


def started(xsb: str = CORNER, max_steps: int = 20) -> tuple[SokobanEnvironment, str]:
    env = SokobanEnvironment(max_steps)
    return env, env.reset(Task("test/1", {"xsb": xsb}))


def run(env: SokobanEnvironment, moves: list[str]) -> list:
    return [env.step(move) for move in moves]


def suite_for(suite: str = "small", max_steps: int = 40, tasks: int | list = 3) -> SokobanSuite:
    return open_suite(EnvConfig(kind="sokoban", suite=suite, max_steps=max_steps, tasks=tasks))


# -- observation and actions -----------------------------------------------------------


def test_reset_draws_the_level_with_a_legend_and_says_where_each_box_and_goal_is():
    env, observation = started()
    assert isinstance(env, Environment)
    assert observation.splitlines() == [
        "######",
        "#-.$-#",
        "#--@-#",
        "######",
        "Legend: # wall, - floor, @ you, $ box, . goal, * box on a goal, + you on a goal.",
        "You (@) are at row 2, column 3. Boxes on goals: 0 of 1.",
        "Box at row 1, column 3: the nearest free goal is 1 left of it, at row 1, column 2.",
        "Actions: up, down, left, right (move one cell; walking into a box pushes it).",
    ]


@pytest.mark.parametrize(("text", "move"), [
    ("up", "up"), ("I go LEFT.", "left"), ("move north", "up"), ("East!", "right"),
    ("down, then left", "down"), ("jump", None), ("upward", None), ("", None),
])
def test_parse_move_takes_the_first_move_word(text, move):
    assert parse_move(text) == move


# -- feedback --------------------------------------------------------------------------


def test_pushing_the_box_onto_its_goal_solves_the_level_with_score_one():
    env, _ = started()
    walk, climb, push = run(env, SOLVE_CORNER)
    assert walk.observation.splitlines()[0] == "You moved right."
    assert (walk.feedback["moved"], walk.feedback["pushed"], walk.score, walk.done) == (True, False, 0.0, False)
    assert push.observation.splitlines()[0] == (
        "You pushed a box left onto a goal: 1 of 1 boxes on goals. Every box is on a goal: solved!")
    assert push.feedback == {"action": "left", "moved": True, "pushed": True, "box": [1, 2], "boxes_on_goals": 1,
                             "boxes": 1, "success": True, "steps": 3, "position": [1, 3]}
    assert (push.score, push.done) == (1.0, True) and step_succeeded(push)
    assert "#-*@-#" in push.observation
    json.dumps(push.feedback)


def test_a_move_into_a_wall_or_an_unmovable_box_is_named_and_moves_nothing():
    env, _ = started()
    wall = env.step("down")
    assert wall.observation.splitlines()[0] == "Blocked by a wall: you did not move down."
    assert (wall.feedback["blocked_by"], wall.feedback["moved"], wall.feedback["position"]) == ("a wall", False, [2, 3])
    stuck = env.step("up")  # the box above has the top wall behind it
    assert stuck.observation.splitlines()[0] == "Blocked: the box up of you cannot move, a wall is behind it."
    assert stuck.feedback["blocked_by"] == "a box that cannot move"
    assert (stuck.feedback["steps"], stuck.score, stuck.done) == (2, 0.0, False)


def test_a_push_into_a_corner_without_a_goal_is_a_hazard_that_ends_the_episode_with_score_zero():
    env, _ = started()
    *_, corner = run(env, INTO_THE_CORNER)
    assert corner.feedback["hazard"] == "a box stuck in a corner"
    assert corner.feedback["stuck_box"] == [1, 4]
    assert (corner.score, corner.done, corner.feedback["success"]) == (0.0, True, False)
    assert not step_succeeded(corner)
    assert corner.observation.splitlines()[0] == (
        "You pushed a box into the corner at row 1, column 4, where no goal is: it can never move again, "
        "so the level cannot be solved. The episode is over: a failure, score 0.")
    after = env.step("down")
    assert (after.score, after.done) == (0.0, True) and "episode is over" in after.feedback["error"]


def test_the_score_is_the_share_of_boxes_on_goals_and_a_box_pushed_off_its_goal_is_named():
    env, _ = started(TWO_BOXES)
    placed, pushed_off = run(env, ["right", "right"])
    assert placed.observation.splitlines()[0] == "You pushed a box right onto a goal: 1 of 2 boxes on goals."
    assert (placed.score, placed.done, placed.feedback["boxes_on_goals"]) == (0.5, False, 1)
    assert pushed_off.observation.splitlines()[0] == "You pushed a box right off its goal: 0 of 2 boxes on goals."
    assert (pushed_off.score, pushed_off.feedback["boxes_on_goals"]) == (0.0, 0)


def test_an_unreadable_answer_is_a_failed_step_and_the_budget_ends_the_episode():
    env, _ = started(max_steps=2)
    result = env.step("jump over the box")
    assert result.feedback["error"] == "Unknown action 'jump over the box'; use one of: up, down, left, right."
    assert (result.feedback["moved"], result.feedback["steps"], result.done) == (False, 1, False)
    assert result.observation.splitlines()[0] == result.feedback["error"]
    assert env.step("left").done is True


# -- snapshot, expert, generated rooms ---------------------------------------------------


def test_restore_replays_identical_observations_on_the_same_and_a_fresh_environment():
    env, _ = started(TWO_BOXES)
    env.step("right")
    state = env.snapshot()
    script = ["down", "right", "up", "left", "right"]
    first = run(env, script)
    for target in (env, SokobanEnvironment(20)):
        target.restore(state)
        assert run(target, script) == first
        target.restore(state)
        assert run(target, script) == first


@pytest.mark.parametrize(("suite", "boxes"), [("small", 1), ("medium", 2), ("7x7-2", 2), ("large", 3)])
def test_generated_rooms_are_fixed_by_their_seed_and_the_expert_solves_each(suite, boxes):
    seeds = range(4) if suite != "large" else range(2)
    sokoban = suite_for(suite, max_steps=200)
    drawn = []
    for task in sokoban.load_tasks(len(seeds)):
        env = sokoban.new_environment()
        observation = env.reset(task)
        assert observation == SokobanEnvironment(200).reset(task), "the same seed draws the same room"
        assert f"Boxes on goals: 0 of {boxes}." in observation
        drawn.append(observation)
        for _ in range(200):
            result = env.step(sokoban.expert_action(env))
            if result.done:
                break
        assert result.feedback["success"], f"{task.name}: {result.observation}"
        assert sokoban.expert_action(env) is None  # nothing left to do
    assert len(set(drawn)) == len(drawn), "each seed draws its own room"


def test_the_expert_names_no_move_on_a_dead_level():
    sokoban = suite_for()
    env, _ = started()
    run(env, INTO_THE_CORNER)
    assert sokoban.expert_action(env) is None


# -- tasks and level files ---------------------------------------------------------------


def test_tasks_are_seeds_given_as_a_count_numbers_or_full_names():
    sokoban = suite_for("small")
    assert sokoban.kind == "sokoban"
    assert [task.name for task in sokoban.load_tasks(2)] == ["sokoban-small/0", "sokoban-small/1"]
    assert [task.spec["seed"] for task in sokoban.load_tasks([7, "8", "sokoban-small/9"])] == [7, 8, 9]
    assert sokoban.canonical_solution(sokoban.load_tasks(1)[0]) is None
    for bad in (["-1"], ["seven"], ["sokoban-medium/1"], [True]):
        with pytest.raises(EnvironmentSetupError, match="sokoban: task"):
            sokoban.load_tasks(bad)


def test_a_level_file_gives_its_levels_by_number_with_their_titles(tmp_path):
    path = tmp_path / "mine.xsb"
    path.write_text(f"; The corner\n\n{CORNER}\n\n; Two boxes\n{TWO_BOXES}\n")
    sokoban = suite_for(str(path), tasks=2)
    tasks = sokoban.load_tasks(2)
    assert [task.name for task in tasks] == ["mine.xsb/1", "mine.xsb/2"]
    assert [task.spec["title"] for task in tasks] == ["The corner", "Two boxes"]
    assert [task.name for task in sokoban.load_tasks(["2", "mine.xsb/1"])] == ["mine.xsb/2", "mine.xsb/1"]
    assert sokoban.new_environment().reset(tasks[0]).splitlines()[:4] == CORNER.splitlines()
    with pytest.raises(EnvironmentSetupError, match=r"unknown task 'mine.xsb/3': .* holds levels 1 to 2"):
        sokoban.load_tasks([3])
    with pytest.raises(EnvironmentSetupError, match="holds levels 1 to 2"):
        sokoban.load_tasks(5)


@pytest.mark.parametrize(("text", "message"), [
    ("#####\n#-$.#\n#####", "exactly one worker"),
    ("#####\n#@$-#\n#####", "as many goals as boxes"),
])
def test_an_unplayable_level_in_a_file_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "bad.xsb"
    path.write_text(text)
    with pytest.raises(EnvironmentSetupError, match=f"level 1 of .*bad.xsb is not playable: .*{message}"):
        suite_for(str(path)).load_tasks(1)


@pytest.mark.parametrize(("suite", "message"), [
    ("tiny", "is not a room size"), ("3x3-1", "too small"), ("20x20-2", "too large"),
    ("missing.xsb", "level file not found"),
])
def test_a_bad_suite_is_refused_in_one_line(suite, message):
    with pytest.raises(EnvironmentSetupError, match=message):
        suite_for(suite)


# -- template reflection and a scripted run ----------------------------------------------


def episode(xsb: str, moves: list[str]) -> list[dict]:
    env, observation = started(xsb)
    steps = [{"action": None, "observation": observation, "feedback": {}, "score": 0.0, "depth": 0}]
    for depth, move in enumerate(moves, start=1):
        result = env.step(move)
        steps.append({"action": move, "observation": result.observation, "feedback": result.feedback,
                      "score": result.score, "depth": depth})
    return steps


def test_the_template_note_names_the_dead_corner_and_rolls_back_to_the_push_into_it():
    note, rollback = suite_for().reflect_template(episode(CORNER, INTO_THE_CORNER))
    assert rollback == 3
    assert note.startswith("Step 3 pushed a box into the corner at row 1, column 4, where no goal is: "
                           "the level could not be solved after it (score 0).")
    assert "Before step 3: Box at row 1, column 3: the nearest free goal is 1 left of it" in note
    assert "right" not in note.split("Before step 3")[0]  # it never writes the moves that solve it


def test_the_template_note_counts_walls_and_rolls_back_to_a_box_pushed_off_its_goal():
    note, rollback = suite_for().reflect_template(episode(TWO_BOXES, ["up", "left", "down", "right", "right"]))
    assert rollback == 5
    assert "It placed 0 of 2 boxes on goals in 5 steps with 2 pushes." in note
    assert "walked into a wall or a stuck box once, at step 2" in note
    assert "Step 5 pushed a box off its goal." in note
    note, rollback = suite_for().reflect_template(episode(CORNER, ["down", "jump"]))
    assert rollback == 1 and "One answer was not a move." in note


def test_a_scripted_run_stores_the_hazard_rolls_back_before_it_and_a_branch_solves_the_level(workdir):
    from store.db import open_store
    from workbench.pipeline import run_pipeline

    (workdir / "levels.xsb").write_text(CORNER + "\n")
    # Into the corner at step 3; the note rolls back to step 3, where the branch walks
    # round the box (down, right, right, up) and pushes it left onto the goal.
    script = write_script(workdir / "s.jsonl", {"levels.xsb/1": [*INTO_THE_CORNER, "down", "right", "right", "up", "left"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": "sokoban", "suite": "levels.xsb", "tasks": [1], "max_steps": 8},
        "backtrack": {"branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack", "curate"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "s.db")
    (episode_row,) = db["episodes"].rows
    assert (episode_row["score"], episode_row["success"], episode_row["steps"]) == (0.0, 0, 3)
    (note,) = db["notes"].rows
    assert "pushed a box into the corner" in note["text"]
    assert db["nodes"].get(note["rollback_node_id"])["depth"] == 3
    branch = list(db["nodes"].rows_where("branch_depth = 1", order_by="depth"))
    assert [row["action"] for row in branch] == ["down", "right", "right", "up", "left"]
    assert branch[0]["depth"] == 3 and "row 2, column 2" in branch[0]["observation"]  # restored before the push
    assert branch[-1]["success"] == 1
    assert [row["status"] for row in db["corrections"].rows] == ["approved"]
    db.close()


@pytest.mark.parametrize(("env", "line"), [
    ('suite = "tiny"', "leafe-tui: sokoban: env.suite 'tiny' is not a room size (small, medium, large, or "
     "ROWSxCOLUMNS-BOXES such as 7x7-2) nor a level file (.xsb, .sok, .txt)"),
    ('suite = "levels.xsb"\ntasks = [4]', "leafe-tui: sokoban: unknown task 'levels.xsb/4': "
     "{folder}/levels.xsb holds levels 1 to 1"),
])
def test_a_bad_suite_or_task_stops_a_batch_run_with_exit_2_and_one_line(tmp_path, env, line):
    (tmp_path / "levels.xsb").write_text(CORNER + "\n")
    config = tmp_path / "c.toml"
    config.write_text(f'[env]\nkind = "sokoban"\n{env}\n')
    process = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--batch", str(config), "--db", "s.db"], capture_output=True,
        text=True, cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert process.returncode == 2, process.stderr
    assert process.stderr.strip().splitlines() == [line.format(folder=tmp_path)]
    assert not (tmp_path / "s.db").exists()
