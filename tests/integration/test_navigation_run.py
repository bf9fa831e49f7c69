"""Every stage end to end on navigation with the embedded model: 2 seeds of a small grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.db import open_store
from workbench.config import config_from_dict
from workbench.pipeline import STAGE_FUNCTIONS, run_pipeline

# slow: every stage, each baseline spending LEAFE's whole budget (Early Experience collects
# until it is spent, then trains on all of it), took over 10 minutes on the loaded 2-core
# machine. `pytest -m slow` runs it; each stage also has a faster real-model test of its own.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENV_ID = "MiniGrid-Empty-Random-5x5-v0"


def test_all_stages_on_two_seeds(workdir):
    config = config_from_dict({
        "model": {"name": "embedded", "max_new_tokens": 16, "context_length": 768},
        "env": {"kind": "navigation", "suite": ENV_ID, "tasks": [0, 1], "max_steps": 4},
        "explore": {"rollouts_per_task": 2, "temperature": 0.9},
        "prompts": {"history_turns": 0},  # as examples/navigation.toml
        "backtrack": {"branches": 2, "max_depth": 1},
        "curate": {"policy": "auto"},
        "export": {"rehearsal": True},
        "distill": {"epochs": 1, "max_length": 512, "batch_size": 4},
        "baselines": {"grpo_steps": 1, "grpo_group_size": 2, "alternatives": 1},
        "evaluate": {
            "policies": ["base", "adapter:leafe-run-{run}", "adapter:rft-run-{run}",
                         "adapter:grpo-run-{run}", "adapter:early-experience-run-{run}"],
            "tasks": [34, 35], "n": 2, "k": [1, 2],
        },
        # Every stage a run lists ("validate" is the rounds' own step, planned by [leafe]).
        "stages": {"run": [stage for stage in STAGE_FUNCTIONS if stage != "validate"]},
    })
    result = run_pipeline(config, db_path=workdir / "nav.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "nav.db")
    names = {row["name"] for row in db["tasks"].rows}
    assert {f"{ENV_ID}/0", f"{ENV_ID}/1", f"{ENV_ID}/34", f"{ENV_ID}/35"} <= names
    for step in db["nodes"].rows_where("depth > 0"):
        feedback = json.loads(step["feedback"])
        assert {"distance", "collided", "reached"} <= set(feedback) or "error" in feedback
    trained = {row["kind"]: row["name"] for row in db["adapters"].rows}
    # GRPO and Early Experience always have data; LEAFE and rft need a correction or a
    # success, and a 135M model may find none in 4 episodes: then their stage says skipped.
    assert {"grpo", "early_experience"} <= set(trained) <= {"leafe", "rft", "grpo", "early_experience"}
    for stage, kind in (("distill", "leafe"), ("baseline:rft", "rft")):
        assert (kind in trained) != ("skipped" in result.summaries[stage])
    for dataset in db["datasets"].rows_where("kind in ('leafe', 'rft')"):
        for line in Path(dataset["path"]).read_text().splitlines():
            example = json.loads(line)
            # A windowed policy saw one observation before each action: so does training.
            assert example["target_start"] == len(example["messages"]) - 1
            assert [m["role"] for m in example["messages"]][-3:] == ["system", "user", "assistant"]
    table = result.summaries["evaluate"]["table"]
    assert set(table) == {"base"} | {f"adapter:{name}" for name in trained.values()}
    assert all(set(row) == {"1", "2"} for row in table.values())
    assert db["evals"].count == 2 * len(table)
