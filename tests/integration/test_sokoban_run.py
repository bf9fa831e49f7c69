"""Sokoban end to end with the embedded model: 2 small generated rooms, one rollout each,
template notes and branches (the solver as expert is tested in tests/unit/test_sokoban_env.py;
training Early Experience on it here took minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest

from store.db import open_store
from workbench.config import config_from_dict
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration


def test_explore_reflect_and_backtrack_on_two_small_rooms(workdir):
    config = config_from_dict({
        "model": {"name": "embedded", "max_new_tokens": 8, "context_length": 512},
        "env": {"kind": "sokoban", "suite": "small", "tasks": [0, 1], "max_steps": 3},
        "explore": {"rollouts_per_task": 1, "temperature": 0.9},
        "prompts": {"history_turns": 0},
        "backtrack": {"branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack", "curate"]},
    })
    result = run_pipeline(config, db_path=workdir / "sokoban.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "sokoban.db")
    assert {row["name"] for row in db["tasks"].rows} == {"sokoban-small/0", "sokoban-small/1"}
    steps = list(db["nodes"].rows_where("depth > 0"))
    assert steps, "the model took steps"
    for step in steps:
        feedback = json.loads(step["feedback"])
        assert {"boxes_on_goals", "boxes", "position"} <= set(feedback)
        assert ("error" in feedback) != (feedback["action"] in ("up", "down", "left", "right"))
    failed = [row for row in db["episodes"].rows if not row["success"]]
    assert db["notes"].count == len(failed)
    for note in db["notes"].rows:
        assert "box" in note["text"]  # the sokoban template wrote it, not the generic rule
    if failed:
        assert db["nodes"].count_where("branch_depth = 1") >= 1, "a failed episode was branched"
    db.close()
