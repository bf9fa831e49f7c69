"""End to end with the real embedded model and the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.activity import run_activity
from store.db import open_store
from tests.conftest import ROOT
from workbench.config import load_config
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration


def test_explore_humaneval_with_the_embedded_model(workdir):
    config = load_config(ROOT / "examples/humaneval.toml")
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


@pytest.mark.timeout(1500)  # about 7 min alone on one thread; a loaded 2-core machine took over 10
def test_the_leafe_example_recovers_from_mistakes(workdir):
    # examples/leafe.toml exactly as shipped: its comment promises notes, branches and
    # corrections from the embedded model, and that is what a user must get.
    config = load_config(ROOT / "examples/leafe.toml")
    result = run_pipeline(config, db_path=workdir / "l.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "l.db")
    summaries = result.summaries
    assert set(summaries) == {"explore", "reflect", "backtrack", "curate", "export"}
    activity = run_activity(db, result.run_id)
    failed = activity.episodes - activity.successes
    assert failed > 0, "the base model makes mistakes here"
    assert activity.notes == failed, "every failed episode is reflected on"
    assert activity.backtrack_points > 0 and activity.branches > 0
    corrections = sum(activity.corrections.values())
    assert corrections >= 1, "some branch recovered: a correction"
    assert activity.corrections["approved"] >= 1 and summaries["export"]["corrections"] >= 1
    for note in db["notes"].rows:
        tau = db["nodes"].get(note["rollback_node_id"])
        assert tau["backtrack_point"] == 1
    dataset = db.execute("select path, n_examples from datasets").fetchone()
    lines = [json.loads(line) for line in Path(dataset[0]).read_text().splitlines()]
    assert len(lines) == dataset[1] >= 1
    text = json.dumps(lines)
    for note in db["notes"].rows:
        assert note["text"] not in text, "the training data never holds the note"
