"""A Gymnasium environment end to end with the embedded model: FrozenLake's ansi render,
actions by name, 2 seeds of the slippery lake, one rollout each, notes and branches."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.short_runs import (
    assert_failed_episodes_noted_and_branched,
    explore_reflect_backtrack,
)

pytestmark = pytest.mark.integration


def test_explore_reflect_and_backtrack_on_two_seeds_of_frozen_lake(workdir):
    db, steps = explore_reflect_backtrack(workdir / "lake.db", {
        "kind": "gymnasium", "suite": "FrozenLake-v1", "tasks": [0, 1], "max_steps": 4,
        "options": {"is_slippery": True}, "action_names": ["left", "down", "right", "up"],
    })
    assert {row["name"] for row in db["tasks"].rows} == {"FrozenLake-v1/0", "FrozenLake-v1/1"}
    for step in steps:
        feedback = json.loads(step["feedback"])
        assert ("error" in feedback) != (feedback["action"] in (0, 1, 2, 3))
        assert "\x1b" not in step["observation"] and "Actions: 0 (left)" in step["observation"]
    assert_failed_episodes_noted_and_branched(db)
    db.close()
