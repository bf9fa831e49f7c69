"""A Gymnasium environment end to end with the embedded model: FrozenLake's ansi render,
actions by name, 2 seeds of the slippery lake, one rollout each, notes and branches."""

from __future__ import annotations

import json

import pytest

from store.db import open_store
from workbench.config import config_from_dict
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration


def test_explore_reflect_and_backtrack_on_two_seeds_of_frozen_lake(workdir):
    config = config_from_dict({
        "model": {"name": "embedded", "max_new_tokens": 8, "context_length": 512},
        "env": {"kind": "gymnasium", "suite": "FrozenLake-v1", "tasks": [0, 1], "max_steps": 4,
                "options": {"is_slippery": True}, "action_names": ["left", "down", "right", "up"]},
        "explore": {"rollouts_per_task": 1, "temperature": 0.9},
        "prompts": {"history_turns": 0},
        "backtrack": {"branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack", "curate"]},
    })
    result = run_pipeline(config, db_path=workdir / "lake.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "lake.db")
    assert {row["name"] for row in db["tasks"].rows} == {"FrozenLake-v1/0", "FrozenLake-v1/1"}
    steps = list(db["nodes"].rows_where("depth > 0"))
    assert steps, "the model took steps"
    for step in steps:
        feedback = json.loads(step["feedback"])
        assert ("error" in feedback) != (feedback["action"] in (0, 1, 2, 3))
        assert "\x1b" not in step["observation"] and "Actions: 0 (left)" in step["observation"]
    failed = [row for row in db["episodes"].rows if not row["success"]]
    assert db["notes"].count == len(failed)
    if failed:
        assert db["nodes"].count_where("branch_depth = 1") >= 1, "a failed episode was branched"
    db.close()
