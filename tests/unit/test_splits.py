"""Splits and protocol: a run records its training, validation and test tasks; test tasks
that are also training or validation tasks, or (MiniGrid) start like one, are named in one
warning line, stored with the run and shown in --json."""

from __future__ import annotations

import json

from store.db import open_store
from store.splits import get_splits
from tests.conftest import GUESS_ENV, write_script
from workbench.config import EnvConfig, config_from_dict
from workbench.envs import open_suite
from workbench.envs.base import Task
from workbench.envs.navigation import NavigationEnvironment
from workbench.pipeline import run_pipeline
from workbench.splits import run_splits, splits_warning

ROOM = "MiniGrid-Empty-Random-5x5-v0"  # only 32 distinct starts


def navigation_config(training, validation, test):
    return config_from_dict({
        "env": {"kind": "navigation", "suite": ROOM, "tasks": training, "max_steps": 4},
        "leafe": {"validation_tasks": validation}, "evaluate": {"tasks": test},
    })


def start_of(seed: int) -> tuple:
    env = NavigationEnvironment(4)
    env.reset(Task(f"{ROOM}/{seed}", {"env_id": ROOM, "seed": seed}))
    return env.minigrid.grid.encode().tobytes(), env.agent_cell(), int(env.minigrid.agent_dir)


def test_a_test_seed_that_starts_like_a_training_seed_is_not_held_out():
    # 12 training and 4 validation seeds against 32 test seeds in a room of 32 starts:
    # a clash is certain to be found, and each one found is a real one.
    config = navigation_config(list(range(12)), list(range(12, 16)), list(range(100, 132)))
    suite = open_suite(config.env)
    splits = run_splits(config, suite)
    suite.close()
    assert splits["same_start"], "32 test seeds over 32 starts must share one with the 16 others"
    known = {seed: start_of(seed) for seed in range(16)}
    for name, twin in splits["same_start"].items():
        assert start_of(int(name.rsplit("/", 1)[1])) == start_of(int(twin.rsplit("/", 1)[1]))
    held_out = [name for name in splits["test"] if name not in splits["same_start"]]
    assert splits["held_out"] == len(held_out) > 0
    for name in held_out:  # every seed let through starts unlike all 16 others
        assert start_of(int(name.rsplit("/", 1)[1])) not in known.values()
    line = splits_warning(splits)
    assert line is not None and "\n" not in line and f"{len(splits['same_start'])} of the 32" in line
    assert "starts like" in line


def test_distinct_starts_are_held_out():
    # Seeds chosen by their start: each test seed's start differs from the training seeds'.
    seen, training, test = set(), [], []
    for seed in range(200):
        start = start_of(seed)
        if start in seen:
            continue
        seen.add(start)
        (training if len(training) < 4 else test).append(seed)
        if len(test) == 4:
            break
    config = navigation_config(training, None, test)
    suite = open_suite(config.env)
    splits = run_splits(config, suite)
    suite.close()
    assert splits["same_start"] == {} and splits["overlap"] == {} and splits["held_out"] == 4
    assert splits_warning(splits) is None


def test_the_start_state_is_layout_cell_and_heading():
    suite = open_suite(EnvConfig(kind="navigation", suite=ROOM, max_steps=4))
    starts = {suite.start_state(Task(f"{ROOM}/{seed}", {"env_id": ROOM, "seed": seed})) for seed in range(300)}
    suite.close()
    assert len(starts) == 32  # 8 free cells x 4 headings, one layout


def run_guess(workdir, **sections):
    data = {
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", {f"guess/{i}": ["3"] for i in range(4)}))},
        "env": {"kind": GUESS_ENV, "tasks": ["guess/0", "guess/1"], "max_steps": 2},
        "evaluate": {"n": 1, "k": [1]},
        "stages": {"run": ["explore", "evaluate"]},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    result = run_pipeline(config_from_dict(data), db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    return result


def test_a_run_records_its_splits_and_warns_about_test_tasks_it_trains_or_validates_on(workdir):
    result = run_guess(workdir, leafe={"validation_tasks": ["guess/2"]},
                       evaluate={"tasks": ["guess/1", "guess/2", "guess/3"]})
    splits = get_splits(open_store(workdir / "s.db"), result.run_id)
    assert splits["training"] == ["guess/0", "guess/1"] and splits["validation"] == ["guess/2"]
    assert splits["test"] == ["guess/1", "guess/2", "guess/3"]
    assert splits["overlap"] == {"guess/1": "training", "guess/2": "validation"} and splits["held_out"] == 1
    warnings = [line for line in result.messages if "not held out" in line]
    assert warnings == ["warning: 2 of the 3 test tasks are not held out (guess/1 is a training task; "
                        "guess/2 is a validation task); their results are not held-out measures"]
    assert json.loads(json.dumps(result.as_json()))["splits"] == splits


def test_held_out_test_tasks_give_no_warning(workdir):
    result = run_guess(workdir, leafe={"validation_tasks": ["guess/2"]}, evaluate={"tasks": ["guess/3"]})
    assert not [line for line in result.messages if "not held out" in line]
    assert result.as_json()["splits"]["held_out"] == 1
