"""Sokoban end to end with the embedded model: 2 small generated rooms, one rollout each,
template notes and branches (the solver as expert is tested in tests/unit/test_sokoban_env.py;
training Early Experience on it here took minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.short_runs import (
    assert_failed_episodes_noted_and_branched,
    explore_reflect_backtrack,
)

pytestmark = pytest.mark.integration


def test_explore_reflect_and_backtrack_on_two_small_rooms(workdir):
    db, steps = explore_reflect_backtrack(
        workdir / "sokoban.db", {"kind": "sokoban", "suite": "small", "tasks": [0, 1], "max_steps": 3}
    )
    assert {row["name"] for row in db["tasks"].rows} == {"sokoban-small/0", "sokoban-small/1"}
    for step in steps:
        feedback = json.loads(step["feedback"])
        assert {"boxes_on_goals", "boxes", "position"} <= set(feedback)
        assert ("error" in feedback) != (feedback["action"] in ("up", "down", "left", "right"))
    for note in db["notes"].rows:
        assert "box" in note["text"]  # the sokoban template wrote it, not the generic rule
    assert_failed_episodes_noted_and_branched(db)
    db.close()
