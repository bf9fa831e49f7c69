"""The gymnasium environment: any Gymnasium id as text, actions by number or name, reward and
termination as score and done, snapshots only where a copy behaves as the original.

FrozenLake-v1 (4x4, not slippery unless said) is drawn as
    SFFF
    FHFH
    FFFH
    HFFG
with the agent at S; its actions are 0 left, 1 down, 2 right, 3 up.
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
from workbench.envs.base import Environment, step_succeeded
from workbench.envs.gymnasium import GymnasiumSuite, plain_text
from workbench.errors import EnvironmentSetupError

LAKE = "FrozenLake-v1"
NAMES = ["left", "down", "right", "up"]
TO_THE_GOAL = ["down", "down", "right", "right", "down", "right"]
HANDLE = "tests.fixtures.gym_handle_env:HandleWalk-v0"
CART_TEXT = "tests.fixtures.gym_handle_env:cart_pole_text"


def lake(slippery: bool = False, names: list[str] = NAMES, max_steps: int = 20) -> GymnasiumSuite:
    return open_suite(EnvConfig(kind="gymnasium", suite=LAKE, options={"is_slippery": slippery},
                                action_names=names, max_steps=max_steps))


def started(suite: GymnasiumSuite, seed: int = 0):
    env = suite.new_environment()
    return env, env.reset(suite.load_tasks([seed])[0])


def run(env, actions: list[str]) -> list:
    return [env.step(action) for action in actions]


# -- observation and actions -----------------------------------------------------------


def test_the_ansi_render_is_the_observation_with_the_agent_in_brackets_and_the_actions_named():
    env, observation = started(lake())
    assert isinstance(env, Environment)
    assert observation.splitlines() == ["[S]FFF", "FHFH", "FFFH", "HFFG",
                                        "Actions: 0 (left), 1 (down), 2 (right), 3 (up)."]
    assert "\x1b" not in observation


def test_plain_text_drops_colour_codes_and_brackets_what_they_highlight():
    assert plain_text("\x1b[41mS\x1b[0mFF\nF\x1b[1;33mH\x1b[0m\x1b[2K") == "[S]FF\nF[H]"
    assert plain_text("no colour\x07") == "no colour"


@pytest.mark.parametrize(("text", "index"), [
    ("right", 2), ("I go DOWN now", 1), ("3", 3), ("Action: 0", 0), ("7 then up", 3), ("jump", None), ("", None),
])
def test_an_action_is_the_first_name_or_valid_number_in_the_answer(text, index):
    assert lake().parse_action(text) == index


# -- reward, termination, score ----------------------------------------------------------


def test_reaching_the_goal_terminates_with_a_positive_reward_a_success_scoring_one():
    env, _ = started(lake())
    results = run(env, TO_THE_GOAL)
    assert [result.score for result in results] == [0.0] * 5 + [1.0]
    last = results[-1]
    assert last.feedback == {"action": 2, "action_name": "right", "reward": 1.0, "return": 1.0, "terminated": True,
                             "truncated": False, "success": True, "steps": 6, "info": {"prob": 1.0}}
    assert last.done and step_succeeded(last)
    assert last.observation.splitlines()[0] == "Action 2 (right): reward 1, return so far 1. Success!"
    assert last.observation.splitlines()[-2] == "HFF[G]"
    json.dumps(last.feedback)


def test_falling_into_a_hole_terminates_without_success_scoring_zero_and_says_so():
    env, _ = started(lake())
    _, hole = run(env, ["right", "down"])
    assert (hole.score, hole.done, hole.feedback["terminated"], hole.feedback["success"]) == (0.0, True, True, False)
    assert hole.feedback["message"] == "the episode terminated without success, reward 0, return 0"
    assert hole.observation.splitlines()[0] == "Action 1 (down): reward 0, return so far 0. The episode terminated without success."
    after = env.step("down")
    assert after.done and "episode is over" in after.feedback["error"]


def test_an_unknown_action_is_a_failed_step_naming_the_choices_and_the_budget_ends_the_episode():
    env, _ = started(lake(max_steps=2))
    result = env.step("fly north-east")
    assert result.feedback["error"] == (
        "Unknown action 'fly north-east'; answer with one of: 0 (left), 1 (down), 2 (right), 3 (up).")
    assert (result.feedback["action"], result.feedback["steps"], result.done) == (None, 1, False)
    assert env.step("left").done is True


def test_without_action_names_actions_are_numbers():
    env, observation = started(lake(names=[]))
    assert observation.splitlines()[-1] == "Actions: 0, 1, 2, 3."
    assert env.step("2").feedback["action"] == 2
    assert "error" in env.step("right").feedback


def cart(max_steps: int = 30, success_return: float | None = 10.0) -> GymnasiumSuite:
    return open_suite(EnvConfig(kind="gymnasium", suite="CartPole-v1", observation_text=CART_TEXT,
                                success_return=success_return, max_steps=max_steps))


def test_a_user_function_writes_the_observation_and_a_return_threshold_sets_score_and_success():
    env, observation = started(cart(), seed=3)
    assert observation.splitlines()[0].startswith("Cart at ") and observation.endswith("Actions: 0, 1.")
    balanced = run(env, ["0", "1"] * 5)  # alternate pushes: the pole stays up for 10 steps
    assert [result.score for result in balanced] == [round(0.1 * step, 4) for step in range(1, 11)]
    assert [result.done for result in balanced] == [False] * 9 + [True]
    assert balanced[-1].feedback["success"] and balanced[-1].feedback["return"] == 10.0


def test_a_pole_that_falls_before_the_threshold_ends_the_episode_with_a_partial_score():
    env, _ = started(cart(success_return=100.0), seed=3)
    results = []
    while not results or not results[-1].done:
        results.append(env.step("1"))  # always push right: the pole falls within a few dozen steps
    fallen = results[-1]
    assert fallen.feedback["terminated"] and not fallen.feedback["success"]
    assert 0 < fallen.score == round(len(results) / 100, 4) < 1
    assert "without success" in fallen.feedback["message"]


# -- snapshot or replay --------------------------------------------------------------------


def test_a_slippery_lake_is_snapshotted_by_copy_and_restoring_replays_the_same_slides():
    suite = lake(slippery=True)
    assert suite.supports_snapshot
    env, _ = started(suite, seed=5)
    env.step("down")
    state = env.snapshot()
    script = ["right", "right", "down", "down", "right", "down"]
    first = run(env, script)
    for target in (env, suite.new_environment()):
        target.restore(state)
        assert run(target, script) == first
        target.restore(state)
        assert run(target, script) == first


def test_an_environment_whose_copies_share_state_is_rewound_by_replay():
    suite = open_suite(EnvConfig(kind="gymnasium", suite=HANDLE, max_steps=10))
    assert suite.supports_snapshot is False
    assert lake().supports_snapshot is True and cart().supports_snapshot is True
    env, observation = started(suite)
    assert observation.splitlines()[0] == "A...G"


@pytest.mark.parametrize(("kind", "script", "branch_first"), [
    # Into the hole at step 2; the note redoes step 2 from the cell right of the start.
    (LAKE, ["right", "down", "right", "down", "down", "down", "right"], "S[F]FF"),
    # A corridor of 2 cells: back (still at the start), forward, back spend the budget; the
    # last step is redone from cell 1, replayed from the seed, where forward reaches the goal.
    (HANDLE, ["0", "1", "0", "1"], ".AG"),
])
def test_backtracking_resumes_from_the_state_before_the_rollback_step_by_copy_or_replay(
        workdir, kind, script, branch_first):
    from store.db import open_store
    from workbench.pipeline import run_pipeline

    task = f"{kind}/0"
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", {task: script}))},
        "env": {"kind": "gymnasium", "suite": kind, "tasks": [0], "max_steps": 7 if kind == LAKE else 3,
                "options": {"is_slippery": False} if kind == LAKE else {"length": 2},
                "action_names": NAMES if kind == LAKE else []},
        "backtrack": {"branches": 1, "max_depth": 1, "rollback": "last"},
        "stages": {"run": ["explore", "reflect", "backtrack", "curate"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "s.db")
    original = list(db["nodes"].rows_where("depth > 0 and branch_depth = 0", order_by="depth"))
    branch = list(db["nodes"].rows_where("branch_depth = 1", order_by="depth"))
    assert original[-1]["success"] == 0
    assert branch[0]["depth"] == original[-1]["depth"]  # a sibling of the step it redoes
    parent_observation = db["nodes"].get(branch[0]["parent_id"])["observation"]
    assert branch_first in parent_observation
    assert branch[-1]["success"] == 1, [row["observation"] for row in branch]
    assert [row["status"] for row in db["corrections"].rows] == ["approved"]
    db.close()


# -- tasks and errors ----------------------------------------------------------------------


def test_tasks_are_reset_seeds_given_as_a_count_numbers_or_full_names():
    suite = lake()
    assert suite.kind == "gymnasium"
    assert [task.name for task in suite.load_tasks(2)] == [f"{LAKE}/0", f"{LAKE}/1"]
    assert [task.spec["seed"] for task in suite.load_tasks([4, "5", f"{LAKE}/6"])] == [4, 5, 6]
    for bad in (["-1"], ["four"], ["CartPole-v1/1"]):
        with pytest.raises(EnvironmentSetupError, match="gymnasium: task"):
            suite.load_tasks(bad)


@pytest.mark.parametrize(("settings", "message"), [
    ({"suite": "FrozenLak-v1"}, r"unknown environment id 'FrozenLak-v1' \(did you mean: FrozenLake-v1"),
    ({"suite": "CartPole-v1"}, r"CartPole-v1 has no text render .*env.observation_text"),
    ({"suite": "LunarLander-v3"}, "LunarLander-v3 needs a package that is not installed: Box2D"),
    ({"suite": LAKE, "options": {"bogus": 1}}, r"cannot make FrozenLake-v1 with env.options \{'bogus': 1\}"),
    ({"suite": "MountainCarContinuous-v0", "observation_text": CART_TEXT}, "only discrete actions"),
    ({"suite": LAKE, "action_names": ["a", "b"]}, "env.action_names has 2 names but FrozenLake-v1 has 4 actions"),
    ({"suite": "CartPole-v1", "observation_text": "tests.fixtures.gym_handle_env:nothing"}, "has no function nothing"),
    ({"suite": "CartPole-v1", "observation_text": "tests.fixtures.gym_handle_env:broken_text"},
     "failed: ValueError: no text today"),
    ({"suite": LAKE, "success_return": 0.0}, "success_return must be above 0"),
])
def test_a_bad_environment_is_refused_in_one_line_when_the_suite_opens(settings, message):
    with pytest.raises(EnvironmentSetupError, match=message) as error:
        open_suite(EnvConfig(kind="gymnasium", **settings))
    assert "\n" not in str(error.value)


def batch(folder, env_table: str):
    """The real command line on a config holding `env_table`: (exit code, stderr lines)."""
    config = folder / "c.toml"
    config.write_text(f'[env]\nkind = "gymnasium"\n{env_table}\n')
    process = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--batch", str(config), "--db", "s.db"], capture_output=True,
        text=True, cwd=folder, env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=300,
    )
    return process.returncode, process.stderr.strip().splitlines()


@pytest.mark.parametrize(("env_table", "line"), [
    ('suite = "FrozenLak-v1"', "leafe-tui: gymnasium: unknown environment id 'FrozenLak-v1' (did you mean: "
     "FrozenLake-v1, FrozenLake8x8-v1?)"),
    ('suite = "LunarLander-v3"', "leafe-tui: gymnasium: LunarLander-v3 needs a package that is not installed: "
     'Box2D is not installed, you can install it by run `pip install swig` followed by `pip install "gymnasium[box2d]"`'),
    (f'suite = "{LAKE}"\ntasks = ["Taxi-v3/1"]', "leafe-tui: gymnasium: task 'Taxi-v3/1' is not from the suite "
     "'FrozenLake-v1'"),
])
def test_an_unknown_id_a_missing_package_or_a_foreign_task_stops_a_batch_run_with_exit_2_and_one_line(
        tmp_path, env_table, line):
    assert batch(tmp_path, env_table) == (2, [line])
    assert not (tmp_path / "s.db").exists()
