"""[export] targets: what a training example teaches, the policy's words or the action the
environment read from them. MiniGrid-Empty-Random-6x6-v0 seed 0 starts at column 3, row 1
facing south with the goal at column 4, row 4: forward x3, left, forward reaches it."""

from __future__ import annotations

import dataclasses
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
    dataset, _, _ = export_dataset(db, config, run_id, rehearsal=True)
    assert targets_of(dataset.path) == ["forward", "forward", "forward", "left", "forward"], (
        "one bare action per step the environment read; the thinking-aloud answer teaches nothing"
    )
    db.close()


def test_text_targets_keep_the_policys_words(solved_in_prose):
    config, db_path, run_id = solved_in_prose
    db = open_store(db_path)
    dataset, _, _ = export_dataset(db, config, run_id, rehearsal=True)
    assert targets_of(dataset.path) == PROSE
    db.close()


WRONG_ADD = "```python\ndef add(a: int, b: int) -> int:\n    return a - b\n```"
RIGHT_CODE = "def add(a: int, b: int) -> int:\n    return a + b"
# What the 135M policy wrote after passing code in a probe: prose quoting the note's assert,
# too short a run of note words for the leakage check, yet the note's content.
RIGHT_WITH_PROSE = f"```python\n{RIGHT_CODE}\n```\n\nThis fixes `assert candidate(1, 2) == 3` as the note said."


@pytest.fixture
def corrected_in_prose(workdir):
    """A code run whose one correction passes, with prose after its code block."""
    from tests.conftest import ROOT

    config = config_from_dict({
        "model": {"backend": "scripted",
                  "script": str(write_script(workdir / "c.jsonl", {"easy/add": [WRONG_ADD, RIGHT_WITH_PROSE]}))},
        "env": {"kind": "coding", "suite": str(ROOT / "tests/fixtures/two_tasks.jsonl"), "tasks": ["easy/add"],
                "max_steps": 1},
        "backtrack": {"branches": 1},
        "stages": {"run": ["explore", "reflect", "backtrack", "curate", "export"]},
    })
    result = run_pipeline(config, db_path=workdir / "c.db")
    assert result.status == "finished", result.error
    assert result.counts["corrections"] == 1
    return config, workdir / "c.db", result.run_id


def test_code_action_targets_teach_the_code_block_the_sandbox_ran(corrected_in_prose):
    config, db_path, run_id = corrected_in_prose
    config.export.targets = "action"
    db = open_store(db_path)
    (note,) = [row["text"] for row in db["notes"].rows]
    assert "assert candidate(1, 2) == 3" in note, "the note quotes the failing assert"
    dataset, _, _ = export_dataset(db, config, run_id)
    assert targets_of(dataset.path) == [f"```python\n{RIGHT_CODE}\n```"], "the code block alone, no prose"
    config.export.targets = "text"
    as_written, _, _ = export_dataset(db, dataclasses.replace(config, export=dataclasses.replace(
        config.export, name="as-written")), run_id)
    assert targets_of(as_written.path) == [RIGHT_WITH_PROSE], "text targets keep the prose that quotes the note"
    db.close()
