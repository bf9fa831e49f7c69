"""[export] targets: what a training example teaches, the policy's words or the action the
environment read from them. MiniGrid-Empty-Random-6x6-v0 seed 0 starts at column 3, row 1
facing south with the goal at column 4, row 4: forward x3, left, forward reaches it."""

from __future__ import annotations

import json

import pytest

from store.db import open_store
from tests.conftest import write_script
from workbench.config import config_from_dict
from workbench.export import export_dataset
from workbench.pipeline import run_pipeline

EMPTY = "MiniGrid-Empty-Random-6x6-v0"
PROSE = ["I go forward.", "Let me think about the grid.", "forward again", "Move ahead", "So it was left.", "forward!"]


@pytest.fixture
def solved_in_prose(workdir):
    """A run whose one episode reaches the goal in words, one answer naming no action."""
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", {f"{EMPTY}/0": PROSE}))},
        "env": {"kind": "navigation", "suite": EMPTY, "tasks": [0], "max_steps": 12, "view": "words"},
        "prompts": {"history_turns": 0},
        "stages": {"run": ["explore"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    assert result.summaries["explore"]["successes"] == 1, "the scripted words must reach the goal"
    return config, workdir / "s.db", result.run_id


def targets_of(path: str) -> list[str]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line)["messages"][-1]["content"] for line in lines]


def test_action_targets_teach_the_words_the_environment_read(solved_in_prose):
    config, db_path, run_id = solved_in_prose
    config.export.targets = "action"
    db = open_store(db_path)
    dataset, _ = export_dataset(db, config, run_id, rehearsal=True)
    assert targets_of(dataset.path) == ["forward", "forward", "forward", "left", "forward"], (
        "one bare action per step the environment read; the thinking-aloud answer teaches nothing"
    )
    db.close()


def test_text_targets_keep_the_policys_words(solved_in_prose):
    config, db_path, run_id = solved_in_prose
    db = open_store(db_path)
    dataset, _ = export_dataset(db, config, run_id, rehearsal=True)
    assert targets_of(dataset.path) == PROSE
    db.close()
