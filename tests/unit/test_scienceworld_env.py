"""The scienceworld environment with scripted commands: the gold path succeeds, a wrong
focus fails, feedback carries the score change and the simulator's answer, and a replay
reaches the same state. These need Java and the `scienceworld` package (`make setup`
installs both) and fail loudly without them: no test here skips.

find-animal variation 5 (a training variation) starts in the workshop; its gold path is 12
commands, and `open door to hallway` is its first scoring command (score 1/12).
"""

from __future__ import annotations

import json

import pytest

from store.db import open_store
from tests.conftest import write_script
from workbench.config import EnvConfig, config_from_dict
from workbench.envs import open_suite
from workbench.envs.base import step_succeeded
from workbench.envs.scienceworld import (
    VALID_ACTIONS_CHARS,
    ScienceWorldEnvironment,
    ScienceWorldSuite,
    parse_command,
)
from workbench.errors import EnvironmentSetupError
from workbench.pipeline import run_pipeline

TASK = "find-animal"


def suite_for(max_steps: int = 40, show_valid_actions: bool = False, suite: str = TASK) -> ScienceWorldSuite:
    found = open_suite(EnvConfig(kind="scienceworld", suite=suite, tasks=1, max_steps=max_steps,
                                 show_valid_actions=show_valid_actions))
    assert isinstance(found, ScienceWorldSuite)
    return found


@pytest.fixture(scope="module")
def suite() -> ScienceWorldSuite:
    return suite_for()


def started(suite: ScienceWorldSuite, variation: int = 5) -> tuple[ScienceWorldEnvironment, str]:
    env = suite.new_environment()
    observation = env.reset(suite.load_tasks([variation])[0])
    return env, observation


def test_the_gold_path_solves_the_task_with_score_1(suite):
    env, observation = started(suite)
    assert observation.startswith("Task: Your task is to find a(n) animal.")
    assert "This room is called the workshop." in observation
    results = []
    while (command := suite.expert_action(env)) is not None:
        results.append(env.step(command))
    assert len(results) == 12
    scores = [result.score for result in results]
    assert scores == sorted(scores) and scores[-1] == 1.0
    last = results[-1]
    assert last.done and step_succeeded(last) and last.feedback["success"]
    assert "The task is complete!" in last.observation
    assert not any(result.done for result in results[:-1])
    assert suite.expert_action(env) is None  # past the gold path's end


def test_a_wrong_focus_fails_the_task_scoring_0_and_ends_the_episode(suite):
    env, _ = started(suite)
    opened = env.step("open door to hallway")
    assert opened.score > 0
    failed = env.step("focus on table")
    assert failed.done and failed.score == 0.0 and not step_succeeded(failed)
    assert failed.feedback["failed"] and failed.feedback["score_change"] == -round(opened.score, 4)
    assert "failed the task" in failed.feedback["error"]
    assert "The task failed: the episode is over." in failed.observation
    after = env.step("look around")
    assert after.done and after.score == 0.0 and "The episode is over" in after.observation
    assert after.feedback["steps"] == 2  # a command after the end spends nothing


def test_feedback_holds_the_score_change_and_the_simulators_answer(suite):
    env, _ = started(suite)
    unknown = env.step("xyzzy the lamp")
    assert unknown.feedback["understood"] is False and unknown.feedback["score_change"] == 0
    assert "No known action matches that input." in unknown.observation
    assert "understood no command" in unknown.feedback["error"]
    opened = env.step("Action: `Open door to hallway.`")  # read as `open door to hallway`
    assert opened.feedback["action"] == "open door to hallway"
    assert opened.feedback["understood"] is True and "error" not in opened.feedback
    assert opened.feedback["score_change"] == opened.feedback["score"] == round(1 / 12, 4)
    assert opened.score == pytest.approx(1 / 12)
    assert opened.observation.startswith("The door is now open.")
    assert "Score: 0.08 (up 0.08)." in opened.observation
    assert opened.feedback["steps"] == 2 and not opened.done
    json.dumps(opened.feedback)  # stored as JSON


def test_the_budget_ends_an_episode_and_an_empty_answer_spends_a_step():
    env, _ = started(suite_for(max_steps=2))
    empty = env.step("```\n\n```")
    assert "No command in the answer" in empty.feedback["error"] and not empty.done
    last = env.step("look around")
    assert last.done and not step_succeeded(last) and "The episode is over." in last.observation


def test_a_replay_reaches_the_same_state_on_a_reused_and_on_a_fresh_environment(suite):
    commands = ["open door to hallway", "go to hallway", "look around", "xyzzy", "open door to greenhouse"]
    env, first = started(suite)
    played = [first, *(env.step(command) for command in commands)]
    again = [env.reset(suite.load_tasks([5])[0]), *(env.step(command) for command in commands)]
    fresh, observation = started(suite)
    other = [observation, *(fresh.step(command) for command in commands)]
    assert played == again == other
    assert played[2].observation.startswith("You move to the hallway.")


def test_the_expert_follows_only_its_own_path(suite):
    env, _ = started(suite)
    assert suite.expert_action(env) == "open door to hallway"
    env.step("look around")
    assert suite.expert_action(env) is None  # off the gold path there is no expert


def test_tasks_are_variations_named_task_slash_variation_with_the_splits(suite):
    train = suite.load_tasks(3)
    assert [task.name for task in train] == ["find-animal/0", "find-animal/1", "find-animal/2"]
    assert {task.spec["split"] for task in train} == {"train"}
    test = suite.load_tasks(["test:2"])
    assert [task.spec["split"] for task in test] == ["test", "test"]
    assert not {task.name for task in test} & {task.name for task in suite.load_tasks(["train"])}
    dev = suite.load_tasks(["dev"])
    assert dev and {task.spec["split"] for task in dev} == {"dev"}
    named = suite.load_tasks(["find-animal/5", 7, "8"])
    assert [task.name for task in named] == ["find-animal/5", "find-animal/7", "find-animal/8"]
    assert suite_for(suite="4-4").load_tasks(1)[0].name == "find-animal/0"  # ScienceWorld's id works too


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (["find-animal/5", 5], "task 'find-animal/5' is selected twice"),
        (["boil/3"], "task 'boil/3' is not from the suite 'find-animal'"),
        ([100000], "find-animal has no variation 100000 (it has 0.."),
        (["train:100000"], "asks for 100000 train variations of find-animal"),
        (["test:0"], "write test:N with N 1 or more"),
        (["five"], "task 'five' is not a variation"),
        (100000, "asks for 100000 train variations"),
    ],
)
def test_a_bad_selection_is_refused_in_one_line(suite, selection, message):
    with pytest.raises(EnvironmentSetupError) as raised:
        suite.load_tasks(selection)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_an_unknown_task_name_suggests_the_close_ones():
    with pytest.raises(EnvironmentSetupError) as raised:
        suite_for(suite="find-animals")
    assert "unknown task 'find-animals'" in str(raised.value) and "did you mean find-animal" in str(raised.value)


def test_valid_commands_are_shown_when_asked_and_cut_to_fit():
    shown = suite_for(show_valid_actions=True)
    env, observation = started(shown)
    line = observation.splitlines()[-1]
    assert line.startswith("Valid commands (and ") and "look around; inventory" in line
    assert "reset task" not in line and len(line) < VALID_ACTIONS_CHARS + 40
    assert "Valid commands" in env.step("open door to hallway").observation
    plain, observation = started(suite_for())
    assert "Valid commands" not in observation and "Valid commands" not in plain.step("look around").observation


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("open door to kitchen", "open door to kitchen"),
        ("Action: Go to kitchen.", "go to kitchen"),
        ("```\nfocus on  water\n```\nBecause the task says so.", "focus on water"),
        ("> `pick up thermometer`", "pick up thermometer"),
        ("0", "0"),  # the answer to one of ScienceWorld's "which one did you mean" questions
        ("", ""),
        (None, ""),
    ],
)
def test_a_command_is_read_from_the_models_first_line(text, command):
    assert parse_command(text) == command


def steps(*entries: tuple[str, dict, float]) -> list[dict]:
    root = {"depth": 0, "action": None, "feedback": {}, "score": 0.0}
    return [root, *({"depth": i + 1, "action": a, "feedback": f, "score": s} for i, (a, f, s) in enumerate(entries))]


def fb(action: str, score: float, change: float, understood: bool = True, failed: bool = False) -> dict:
    return {"action": action, "score": score, "score_change": change, "understood": understood, "failed": failed}


def test_the_template_note_names_what_went_wrong_and_where_to_redo(suite):
    failed = steps(("open door to hallway", fb("open door to hallway", 0.08, 0.08), 0.08),
                   ("focus on table", fb("focus on table", 0.0, -0.08, failed=True), 0.0))
    note, depth = suite.reflect_template(failed)
    assert depth == 2 and "Step 2 ('focus on table') failed the task" in note
    unknown = steps(("look", fb("look", 0.0, 0.0), 0.0), ("xyzzy", fb("xyzzy", 0.0, 0.0, understood=False), 0.0))
    note, depth = suite.reflect_template(unknown)
    assert depth == 2 and "not a command ScienceWorld understands" in note
    stalled = steps(("open door to hallway", fb("open door to hallway", 0.08, 0.08), 0.08),
                    ("look around", fb("look around", 0.08, 0.0), 0.08))
    note, depth = suite.reflect_template(stalled)
    assert depth == 2 and "rose to 0.08 at step 1" in note


def test_a_scripted_run_stores_the_gold_path_as_a_successful_episode(workdir, suite):
    env, _ = started(suite)
    gold = []
    while (command := suite.expert_action(env)) is not None:
        gold.append(command)
        env.step(command)
    script = write_script(workdir / "gold.jsonl", {"find-animal/5": gold, "find-animal/7": ["look around"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": "scienceworld", "suite": TASK, "tasks": [5, 7], "max_steps": 12},
        "backtrack": {"branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "s.db")
    episodes = {row["name"]: row for row in db.query(
        "select tasks.name, max(nodes.score) as best, max(nodes.success) as solved from nodes "
        "join episodes on episodes.id = nodes.episode_id join tasks on tasks.id = episodes.task_id "
        "where episodes.purpose = 'explore' group by tasks.name")}
    assert episodes["find-animal/5"]["solved"] == 1 and episodes["find-animal/5"]["best"] == 1.0
    assert episodes["find-animal/7"]["solved"] == 0
    # The failed episode (only `look around`, the script's last command, again and again)
    # was reflected on, and backtracking replayed its commands to branch from the note's step.
    notes = [row["text"] for row in db["notes"].rows]
    assert len(notes) == 1 and notes[0].startswith("No command raised the score (still 0.00).")
    branches = db.execute("select count(*) from nodes where branch_depth > 0").fetchone()[0]
    assert branches >= 1
