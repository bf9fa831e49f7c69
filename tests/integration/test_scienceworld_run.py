"""ScienceWorld with the embedded model: one variation, one rollout, two commands, then
a note and a branch replayed from it. Also measures what starting the JVM costs."""

from __future__ import annotations

import json
import time

import pytest

from store.db import open_store
from workbench.config import config_from_dict
from workbench.envs.scienceworld import jvm, variations_of
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration


def test_the_embedded_model_explores_a_variation_and_branches_from_a_note(workdir, report_figure):
    cold = jvm.gateway is None
    started = time.perf_counter()
    variations_of("find-animal")  # starts the JVM (once per process) and loads the task once
    if cold:
        report_figure(f"scienceworld: JVM start {jvm.start_seconds:.2f} s, then the first task load "
                      f"{time.perf_counter() - started - jvm.start_seconds:.2f} s")
    config = config_from_dict({
        "model": {"name": "embedded", "max_new_tokens": 10, "context_length": 768},
        "env": {"kind": "scienceworld", "suite": "find-animal", "tasks": ["find-animal/5"], "max_steps": 2},
        "explore": {"rollouts_per_task": 1, "temperature": 0.7},
        "prompts": {"history_turns": 0},
        "backtrack": {"branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack"]},
    })
    result = run_pipeline(config, db_path=workdir / "sw.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "sw.db")
    steps = list(db["nodes"].rows_where("depth > 0", order_by="id"))
    assert steps
    for step in steps:
        feedback = json.loads(step["feedback"])
        assert {"score", "score_change", "understood", "success"} <= set(feedback)
        assert 0.0 <= step["score"] <= 1.0
    # The original episode either solved the task (no note) or was reflected on and branched.
    solved = any(step["success"] for step in steps if step["branch_depth"] == 0)
    notes = db["notes"].count
    assert solved or (notes == 1 and any(step["branch_depth"] > 0 for step in steps))
