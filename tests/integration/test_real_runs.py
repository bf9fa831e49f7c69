"""End to end with the real embedded model and the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.db import open_store
from tests.conftest import ROOT
from workbench.config import load_config
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration


def test_explore_humaneval_with_the_embedded_model(workdir):
    config = load_config(ROOT / "examples/quickstart.toml")
    config.env.tasks = 2
    config.env.max_steps = 2
    config.explore.rollouts_per_task = 1
    config.model.max_new_tokens = 96
    result = run_pipeline(config, db_path=workdir / "q.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "q.db")
    steps = list(db["nodes"].rows_where("depth > 0"))
    assert 2 <= len(steps) <= 4
    for step in steps:
        feedback = json.loads(step["feedback"])
        assert {"passed", "total", "score", "success"} <= set(feedback), feedback
        assert step["action"]
    run = db["runs"].get(result.run_id)
    provenance = json.loads(run["provenance"])
    assert provenance["model"]["checksum"].startswith("gguf:")
    assert run["tokens_generated"] > 0


def test_leafe_stages_on_two_easy_tasks(workdir):
    config = load_config(ROOT / "examples/leafe.toml")
    config.model.max_new_tokens = 96
    result = run_pipeline(config, db_path=workdir / "l.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "l.db")
    summaries = result.summaries
    assert set(summaries) == {"explore", "reflect", "backtrack", "curate", "export"}
    failed = db.execute("select count(*) from episodes where success = 0").fetchone()[0]
    assert db["notes"].count == failed, "every failed episode is reflected on"
    if failed:
        assert summaries["backtrack"]["branches"] > 0
    for note in db["notes"].rows:
        tau = db["nodes"].get(note["rollback_node_id"])
        assert tau["backtrack_point"] == 1
    dataset = db.execute("select path, n_examples from datasets").fetchone()
    lines = [json.loads(line) for line in Path(dataset[0]).read_text().splitlines()]
    assert len(lines) == dataset[1]
    text = json.dumps(lines)
    for note in db["notes"].rows:
        assert note["text"] not in text
