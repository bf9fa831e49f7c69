"""Stdin/stdout programs end to end with the embedded model: examples/stdio.toml on one of
the shipped problems, whole programs run per test in the real sandbox, notes and branches."""

from __future__ import annotations

import json
import tomllib

import pytest

from store.db import open_store
from tests.conftest import ROOT
from workbench.config import config_from_dict
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration


def test_explore_reflect_and_backtrack_on_a_stdio_problem(workdir):
    settings = tomllib.loads((ROOT / "examples/stdio.toml").read_text())
    settings["env"] |= {"suite": str(ROOT / "examples/stdio_tasks.jsonl"), "tasks": ["stdio/sum"]}
    settings["model"]["max_new_tokens"] = 64
    settings["stages"] = {"run": ["explore", "reflect", "backtrack", "curate"]}
    settings.pop("store")
    config = config_from_dict(settings)
    result = run_pipeline(config, db_path=workdir / "stdio.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "stdio.db")
    assert {row["name"] for row in db["tasks"].rows} == {"stdio/sum"}
    steps = list(db["nodes"].rows_where("depth > 0"))
    assert steps, "the model took steps"
    for step in steps:
        feedback = json.loads(step["feedback"])
        assert feedback["kind"] == "stdio" and feedback["total"] == 5
        assert 0.0 <= step["score"] <= 1.0 and step["score"] == feedback["passed"] / 5
        if feedback["status"] == "ok" and not feedback["success"]:
            assert "tests passed." in step["observation"]
    failed = [row for row in db["episodes"].rows if not row["success"]]
    assert db["notes"].count == len(failed)
    for note in db["notes"].rows:
        assert note["text"] and "function" not in note["text"]
    if failed:
        assert db["nodes"].count_where("branch_depth = 1") >= 1, "a failed episode was branched"
    db.close()
