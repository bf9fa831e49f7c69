"""The navigation environment: feedback a policy and a reflector can rely on.

Scripts run on fixed seeds. On MiniGrid-Empty-Random-6x6-v0 seed 0 the agent starts at
column 3, row 1 facing south, and the goal is at column 4, row 4 (4 cells away).
"""

from __future__ import annotations

import json

import pytest

from workbench.config import EnvConfig
from workbench.envs import open_suite
from workbench.envs.base import Environment, Task, step_succeeded
from workbench.envs.navigation import NavigationEnvironment, NavigationSuite, parse_action
from workbench.errors import EnvironmentSetupError

EMPTY = "MiniGrid-Empty-Random-6x6-v0"
ALL_WORDS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")


def suite_for(env_id: str = EMPTY, max_steps: int = 20) -> NavigationSuite:
    return NavigationSuite(EnvConfig(kind="navigation", suite=env_id, max_steps=max_steps))


def started(env_id: str = EMPTY, seed: int = 0, max_steps: int = 20) -> tuple[NavigationEnvironment, str]:
    env = NavigationEnvironment(max_steps)
    observation = env.reset(Task(f"{env_id}/{seed}", {"env_id": env_id, "seed": seed}))
    return env, observation


def run(env: NavigationEnvironment, actions: list[str]) -> list:
    return [env.step(action) for action in actions]


def feedback(action, distance, previous, collided=False, reached=False, steps=1, position=(3, 1),
             heading="south", **extra):
    return {"action": action, "distance": distance, "previous_distance": previous,
            "collided": collided, "reached": reached, "success": reached, "steps": steps,
            "position": list(position), "heading": heading, "goal": [4, 4], "carrying": None, **extra}


# -- observation and actions -----------------------------------------------------------


def test_reset_shows_the_whole_map_position_heading_goal_and_actions():
    env, observation = started()
    assert isinstance(env, Environment)
    assert observation.splitlines()[:7] == [
        "Mission: get to the green goal square",
        "######",
        "#..v.#",
        "#....#",
        "#....#",
        "#...G#",
        "######",
    ]
    assert "You (v) are at row 1, column 3, facing south. In front of you: open floor." in observation
    assert "The goal (G) is at row 4, column 4: 1 east and 3 south of you, 4 cells away." in observation
    assert all(word in observation for word in ALL_WORDS)
    assert len(observation.splitlines()) <= 11


def test_words_view_speaks_from_the_agents_point_of_view():
    # Seed 0: at column 3, row 1 facing south; the goal 1 east and 3 south, and facing
    # south, east is on the agent's left.
    env = NavigationEnvironment(20, view="words")
    observation = env.reset(Task(f"{EMPTY}/0", {"env_id": EMPTY, "seed": 0}))
    assert "#" not in observation  # no drawn map
    assert "The goal is 3 forward and 1 to your left, 4 cells away." in observation
    # An empty room needs no object words: the model is shown only the three it can use.
    assert "pickup" not in observation and "Actions: left, right" in observation
    observation = env.step("left")[0]  # now facing east: the goal is ahead and to the right
    assert "The goal is 1 forward and 3 to your right, 4 cells away." in observation


@pytest.mark.parametrize(
    ("text", "word"),
    [("left", "left"), ("I will turn RIGHT now.", "right"), ("Forwards!", "forward"),
     ("Pick up the key", "pickup"), ("go forward, then left", "forward"), ("toggle", "toggle"),
     ("I move one cell towards the goal", "forward"), ("Go straight ahead.", "forward"),
     ("Keep moving toward the goal", "forward"), ("It moves up", "forward"),
     ("jump", None), ("rightward", None), ("", None)],
)
def test_parse_action_takes_the_first_action_word(text, word):
    assert parse_action(text) == word


def test_every_word_the_parser_accepts_is_an_action_the_environment_steps():
    # A word the pattern matched but the action table lacked ("moving") once stopped a
    # validation stage with KeyError: each alternative of the pattern must step.
    alternatives = ["left", "right", "forward", "forwards", "move", "moves", "moving", "ahead",
                    "straight", "pick up", "pick-up", "pickup", "drop", "toggle", "done"]
    env = NavigationEnvironment()
    for word in alternatives:
        env.reset(Task(f"{EMPTY}/0", {"env_id": EMPTY, "seed": 0}))
        observation, *_ = env.step(f"I am {word} now")
        assert "Unknown action" not in observation, word


# -- feedback --------------------------------------------------------------------------


def test_forward_into_a_wall_is_a_collision_and_the_distance_stays():
    env, _ = started()
    *_, blocked = run(env, ["right", "right", "forward"])
    assert blocked.feedback == feedback("forward", 4, 4, collided=True, steps=3, heading="north",
                                        blocked_by="a wall")
    assert blocked.observation.splitlines()[0] == "Blocked by a wall. Distance to goal: 4."
    assert "In front of you: a wall." in blocked.observation
    assert (blocked.score, blocked.done) == (0.0, False)


def test_distance_goes_down_then_up_and_the_score_follows_it():
    env, _ = started()
    results = run(env, ["left", "forward", "right", "right", "forward"])
    closer, farther = results[1], results[4]
    assert closer.feedback == feedback("forward", 3, 4, steps=2, position=(4, 1), heading="east")
    assert closer.observation.splitlines()[0] == "You moved forward. Distance to goal: 3 (was 4)."
    assert closer.score == pytest.approx(0.225)
    assert farther.feedback == feedback("forward", 4, 3, steps=5, position=(3, 1), heading="west")
    assert farther.observation.splitlines()[0] == "You moved forward. Distance to goal: 4 (was 3)."
    assert farther.score == 0.0


def test_reaching_the_goal_succeeds_with_score_one_and_ends_the_episode():
    env, _ = started()
    *_, last = run(env, ["forward", "forward", "forward", "left", "forward"])
    assert last.feedback == feedback("forward", 0, 1, reached=True, steps=5, position=(4, 4), heading="east")
    assert (last.score, last.done) == (1.0, True)
    assert step_succeeded(last)
    assert last.observation.splitlines()[0] == "You reached the goal!"
    json.dumps(last.feedback)


def test_an_unreadable_action_is_a_failed_step_that_names_the_allowed_words():
    env, observation = started()
    env.step("forward")
    result = env.step("jump over the wall")
    assert result.feedback["action"] is None
    assert result.feedback["collided"] is False
    assert (result.feedback["distance"], result.feedback["previous_distance"]) == (3, 3)
    assert result.feedback["steps"] == 2
    assert result.feedback["error"] == (
        "Unknown action 'jump over the wall'; use one of: " + ", ".join(ALL_WORDS) + "."
    )
    assert result.score == pytest.approx(0.225)
    assert result.feedback["position"] == [3, 2]
    assert result.observation.splitlines()[0] == result.feedback["error"]


def test_the_episode_ends_when_the_step_budget_is_spent():
    env, _ = started(max_steps=2)
    assert env.step("left").done is False
    assert env.step("left").done is True


# -- snapshot and restore --------------------------------------------------------------


@pytest.mark.parametrize("env_id", [EMPTY, "MiniGrid-DoorKey-5x5-v0", "MiniGrid-Dynamic-Obstacles-6x6-v0"])
def test_restore_replays_identical_observations_and_transitions(env_id):
    suite = suite_for(env_id)
    env, _ = started(env_id, seed=3, max_steps=30)
    for _ in range(2):
        env.step(suite.expert_action(env))
    state = env.snapshot()
    script = [suite.expert_action(env), "left", "forward", "pickup", "toggle", "forward"]
    first = run(env, script)
    for target in (env, NavigationEnvironment(30)):  # the same instance, twice, and a fresh one
        target.restore(state)
        assert run(target, script) == first
        target.restore(state)
        assert run(target, script) == first


# -- expert planner --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "seeds"),
    [(EMPTY, range(8)), ("MiniGrid-FourRooms-v0", range(4)), ("MiniGrid-DoorKey-5x5-v0", range(8)),
     ("MiniGrid-MultiRoom-N2-S4-v0", range(4))],
)
def test_the_expert_reaches_the_goal_within_the_step_limit(env_id, seeds):
    suite = suite_for(env_id)
    for seed in seeds:
        env = NavigationEnvironment(max_steps=1000)
        env.reset(Task(f"{env_id}/{seed}", {"env_id": env_id, "seed": seed}))
        limit = env.minigrid.max_steps
        for _ in range(limit):
            result = env.step(suite.expert_action(env))
            if result.done:
                break
        assert result.feedback["success"], f"{env_id}/{seed}: {result.observation}"
        assert result.feedback["steps"] <= limit


# -- template reflection ---------------------------------------------------------------


def episode(actions: list[str], env_id: str = EMPTY) -> list[dict]:
    """The stored path of one episode (steps[0] the reset node), as reflection reads it."""
    env, observation = started(env_id)
    steps = [{"action": None, "observation": observation, "feedback": {}, "score": 0.0, "depth": 0}]
    for depth, action in enumerate(actions, start=1):
        result = env.step(action)
        steps.append({"action": action, "observation": result.observation, "feedback": result.feedback,
                      "score": result.score, "depth": depth})
    return steps


def test_reflection_rolls_back_to_where_the_distance_last_got_worse_and_counts_collisions():
    steps = episode(["right", "right", "forward", "right", "forward", "right", "right", "forward", "left"])
    note, rollback = suite_for().reflect_template(steps)
    assert rollback == 8
    assert "hit a wall once, at step 3" in note
    assert "Step 8 moved away from the goal (3 to 4 cells)" in note
    assert "the goal was 3 cells away (3 south of you)" in note
    assert len(note.split()) < 50


def test_reflection_without_a_worse_step_rolls_back_to_the_first_collision_else_where_progress_stopped():
    suite = suite_for()
    note, rollback = suite.reflect_template(episode(["right", "right", "forward", "forward"]))
    assert rollback == 3
    assert "hit a wall 2 times, at steps 3 and 4" in note
    assert "Turn before moving forward" in note
    # Never closer: redo the whole episode, with the whole budget.
    note, rollback = suite.reflect_template(episode(["left", "jump"]))
    assert rollback == 1
    assert "It never got closer to the goal." in note
    assert "One answer was not an action word." in note
    assert "Before step 1 the goal was 4 cells away" in note
    # Closer at step 1 (4 to 3 cells), then turning in place: redo step 2.
    note, rollback = suite.reflect_template(episode(["forward", "left", "left"]))
    assert rollback == 2
    assert "After step 1 it got no closer." in note
    assert "the goal was 3 cells away" in note


def test_reflection_reads_feedback_stored_as_json_text_and_survives_an_unreadable_row():
    steps = episode(["right", "right", "forward", "forward"])
    as_dicts = suite_for().reflect_template(steps)
    as_text = [{**step, "feedback": json.dumps(step["feedback"])} for step in steps]
    assert suite_for().reflect_template(as_text) == as_dicts
    # One row whose feedback is not a JSON object: the note is still written, from the rest.
    as_text[1]["feedback"] = "not json"
    note, rollback = suite_for().reflect_template(as_text)
    assert rollback == 3 and "hit a wall 2 times, at steps 3 and 4" in note


# -- suite -----------------------------------------------------------------------------


def test_tasks_are_seeds_given_as_a_count_numbers_or_full_names():
    suite = open_suite(EnvConfig(kind="navigation", suite=EMPTY))
    assert suite.kind == "navigation"
    assert [task.name for task in suite.load_tasks(2)] == [f"{EMPTY}/0", f"{EMPTY}/1"]
    tasks = suite.load_tasks([7, "8", f"{EMPTY}/9"])
    assert [task.spec for task in tasks] == [{"env_id": EMPTY, "seed": seed} for seed in (7, 8, 9)]
    assert suite.canonical_solution(tasks[0]) is None
    for bad, line in (
        (["-1"], f"navigation: task '-1' is not a seed (a whole number 0 or more, or {EMPTY}/SEED)"),
        (["seven"], f"navigation: task 'seven' is not a seed (a whole number 0 or more, or {EMPTY}/SEED)"),
        (["MiniGrid-FourRooms-v0/1"], f"navigation: task 'MiniGrid-FourRooms-v0/1' is not from the suite '{EMPTY}'"),
        (0, "navigation: env.tasks must be at least 1, got 0"),
        ("3", "navigation: env.tasks must be a count or a list of seeds, got '3'"),
    ):
        with pytest.raises(EnvironmentSetupError) as error:
            suite.load_tasks(bad)
        assert str(error.value) == line


def test_an_unknown_or_goal_less_env_id_is_a_setup_error_that_suggests_valid_ids():
    with pytest.raises(EnvironmentSetupError) as error:
        suite_for("MiniGrid-FourRoom-v0")
    assert "MiniGrid-FourRoom-v0" in str(error.value)
    assert "MiniGrid-FourRooms-v0" in str(error.value)
    with pytest.raises(EnvironmentSetupError, match="no goal square"):
        suite_for("MiniGrid-Unlock-v0")


# -- hazards ---------------------------------------------------------------------------
# MiniGrid-LavaGapS5-v0 seed 0: the agent starts at column 1, row 1 facing east, with lava
# right ahead (column 2, rows 1 and 2) and the goal at column 3, row 3, 4 cells away on foot
# through the gap in row 3. MiniGrid-DistShift1-v0 seed 0: lava from column 3 of row 1.

LAVA_GAP = "MiniGrid-LavaGapS5-v0"
DIST_SHIFT = "MiniGrid-DistShift1-v0"
AROUND_THE_LAVA = ["right", "forward", "forward", "left", "forward", "forward"]


def test_stepping_into_lava_ends_the_episode_as_a_named_failure_scoring_zero():
    env = open_suite(EnvConfig(kind="navigation", suite=LAVA_GAP, max_steps=20)).new_environment()
    observation = env.reset(Task(f"{LAVA_GAP}/0", {"env_id": LAVA_GAP, "seed": 0}))
    assert "In front of you: a red lava." in observation
    result = env.step("forward")
    assert result.feedback["hazard"] == "lava"
    assert (result.score, result.done, result.feedback["success"]) == (0.0, True, False)
    assert not step_succeeded(result)
    assert result.observation.splitlines()[0] == "You stepped into lava. The episode is over: a failure, score 0."
    assert "You are in the lava." in result.observation
    json.dumps(result.feedback)
    # Nothing after it counts, and the score stays 0.
    after = env.step("left")
    assert (after.score, after.done) == (0.0, True) and "episode is over" in after.feedback["error"]


def test_lava_scores_no_better_than_standing_still_though_it_was_closer_to_the_goal():
    # In LavaGap the lava cell is one cell nearer the goal on foot (3, was 4): a completion
    # score would reward it; a hazard scores 0, as turning in place does.
    env, _ = started(LAVA_GAP, seed=0)
    into_lava = env.step("forward")
    assert (into_lava.feedback["distance"], into_lava.feedback["previous_distance"]) == (3, 4)
    still, _ = started(LAVA_GAP, seed=0)
    assert into_lava.score == still.step("left").score == 0.0
    # In DistShift a step that got closer scores above 0, and the next one, into lava, 0.
    env, _ = started(DIST_SHIFT, seed=0)
    closer, lava = run(env, ["forward", "forward"])
    assert closer.score > 0 and "hazard" not in closer.feedback and not closer.done
    assert (lava.score, lava.feedback["hazard"], lava.done) == (0.0, "lava", True)


def test_going_around_the_lava_reaches_the_goal_with_no_hazard():
    env, _ = started(LAVA_GAP, seed=0)
    results = run(env, AROUND_THE_LAVA)
    assert all("hazard" not in result.feedback for result in results)
    assert (results[-1].score, results[-1].done, results[-1].feedback["reached"]) == (1.0, True, True)


def test_restoring_before_the_lava_replays_the_hazard_exactly():
    env, _ = started(LAVA_GAP, seed=0)
    run(env, ["right", "left"])
    state = env.snapshot()
    first = env.step("forward")
    assert first.feedback["hazard"] == "lava"
    env.restore(state)
    assert env.step("forward") == first
    env.restore(state)
    assert run(env, ["right", "forward", "forward", "left", "forward", "forward"])[-1].feedback["success"]


def test_the_template_note_names_the_lava_and_rolls_back_to_the_step_into_it():
    note, rollback = suite_for(LAVA_GAP).reflect_template(episode(["right", "left", "forward"], LAVA_GAP))
    assert rollback == 3
    assert note.startswith("Step 3 stepped into lava: the episode ended as a failure (score 0).")
    assert "the goal was 4 cells away (2 east and 2 south of you)" in note
    assert "go around it, never forward into it" in note
    # The step into lava is the mistake even when an earlier step got the agent closer, and
    # its fact is kept first when the note must be cut to length.
    note, rollback = suite_for(DIST_SHIFT).reflect_template(episode(["hop", "forward", "forward"], DIST_SHIFT))
    assert rollback == 3
    assert note.startswith("Step 3 stepped into lava") and len(note.split()) <= 49


def test_a_run_into_lava_is_stored_as_a_failure_and_its_note_names_the_lava(workdir):
    from store.db import open_store
    from tests.conftest import write_script
    from workbench.config import config_from_dict
    from workbench.pipeline import run_pipeline

    task = f"{LAVA_GAP}/0"
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", {task: ["forward"]}))},
        "env": {"kind": "navigation", "suite": LAVA_GAP, "tasks": [0], "max_steps": 8},
        "stages": {"run": ["explore", "reflect"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    assert result.summaries["explore"]["successes"] == 0
    db = open_store(workdir / "s.db")
    (episode,) = db["episodes"].rows
    assert (episode["score"], episode["success"], episode["steps"]) == (0.0, 0, 1)
    (note,) = db["notes"].rows
    assert "stepped into lava" in note["text"]
    assert db["nodes"].get(note["rollback_node_id"])["action"] == "forward"
    db.close()


# -- rooms where a forward into a wall or a ball ends the episode ---------------------
# MiniGrid-Dynamic-Obstacles-Random-6x6-v0: the empty 6x6 room with 3 balls that move at
# random every step; only left, right and forward exist, and a forward into a wall or a
# ball ends the episode as a failure (the room's own rule, reward -1).

OBSTACLES = "MiniGrid-Dynamic-Obstacles-Random-6x6-v0"


def facing_a_wall(env: NavigationEnvironment) -> bool:
    """Turn until the cell ahead is the wall; False when no neighbour is one."""
    for _ in range(4):
        if env.front_view()["type"] == "wall":
            return True
        env.step("left")
    return False


def test_a_forward_into_a_wall_of_an_obstacle_room_is_a_named_failure_scoring_zero():
    for seed in range(8):  # the first seed whose start cell touches a wall
        env, observation = started(OBSTACLES, seed=seed)
        if not facing_a_wall(env):
            continue
        assert observation.splitlines()[-1] == (
            "Actions: left, right (turn in place), forward (move one cell). "
            "Moving forward into a wall or a ball ends the episode as a failure."
        )
        result = env.step("forward")
        assert (result.feedback["hazard"], result.score, result.done) == ("wall", 0.0, True)
        assert result.observation.splitlines()[0] == "You ran into the wall. The episode is over: a failure, score 0."
        return
    raise AssertionError("no seed starts next to a wall")


def test_in_an_obstacle_room_only_turning_and_moving_are_actions():
    env, _ = started(OBSTACLES, seed=0)
    for word in ("pickup", "toggle", "done"):
        result = env.step(word)
        assert result.feedback["error"].startswith(f"Unknown action {word!r}; use one of: left, right, forward.")
        assert not result.done


def test_the_expert_goes_around_the_moving_balls_to_the_goal():
    suite = suite_for(OBSTACLES, max_steps=40)
    reached = 0
    for seed in range(12):
        env = suite.new_environment()
        env.reset(Task(f"{OBSTACLES}/{seed}", {"env_id": OBSTACLES, "seed": seed}))
        result = None
        while result is None or not result.done:
            action = suite.expert_action(env)
            assert action in ("left", "right", "forward", "done"), f"seed {seed}: the expert chose {action!r}"
            result = env.step(action)
            assert "hazard" not in result.feedback, f"seed {seed}: the expert ran into the {result.feedback['hazard']}"
        reached += result.feedback["reached"]
    # A ball can stand on the goal's only way in until the step budget is out; not often.
    assert reached >= 10


def test_a_note_after_running_into_a_ball_names_the_ball():
    from workbench.envs.navigation.reflect import hazard_note

    steps = [{"depth": 0}, {"depth": 1, "action": "forward"}]
    feedbacks = [{"action": "forward", "hazard": "ball", "previous_distance": 3, "distance": 3}]
    note = hazard_note(steps, feedbacks, 0)
    assert note.startswith("Step 1 ran into the ball: the episode ended as a failure (score 0).")
    assert "The ball (B) was ahead: turn away and go around it" in note
