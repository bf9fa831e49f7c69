"""The evaluate stage compares policies per task: each against base and against the run's
LEAFE adapter, stored in `eval_pairs`, in `--json` as `pairs`, printed under the Pass@k
table; results on tasks an adapter trained on are flagged in the store, the table and
`--json`, and the warning stays."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

import workbench.distill.stage
from store.db import open_store
from store.pairs import overlap_by_policy, pairs
from tests.conftest import GUESS_ENV, write_script
from workbench.config import config_from_dict
from workbench.evaluate import evaluation_tables
from workbench.models.scripted import ScriptedGenerator
from workbench.pipeline import run_pipeline

# guess/0, /1, /2 have secrets 3, 7 and 5. One step per episode, so each policy's four
# rollouts of a task play the next four actions of its line, policies in config order:
# base, then the LEAFE adapter, then the rft adapter.
ACTIONS = {
    "guess/0": ["3", "0", "0", "0"] + ["3", "3", "3", "0"] + ["0", "0", "0", "0"],  # c = 1, 3, 0
    "guess/1": ["0", "0", "0", "0"] + ["7", "7", "0", "0"] + ["7", "0", "0", "0"],  # c = 0, 2, 1
    "guess/2": ["5"] * 12,  # c = 4, 4, 4
}


def adapter_folder(path):
    path.mkdir()
    (path / "adapter_config.json").write_text("{}")
    return str(path)


def insert_adapter(db, name: str, path: str, kind: str, run_id: int | None, task_names: list[str]) -> None:
    db["adapters"].insert({
        "run_id": run_id, "name": name, "path": path, "base_model": "embedded", "kind": kind,
        "metrics": "{}", "lineage": json.dumps({"task_names": task_names}), "created_at": "now",
    })


@pytest.fixture
def scripted_adapters(monkeypatch):
    """The scripted backend plays adapter policies from its script (no weights to swap)."""
    monkeypatch.setattr(ScriptedGenerator, "set_adapter", lambda self, path: None, raising=False)


def evaluate_config(workdir, policies: list[str], stages: list[str]):
    return config_from_dict({
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", ACTIONS))},
        "env": {"kind": GUESS_ENV, "tasks": 3, "max_steps": 1},
        "evaluate": {"policies": policies, "n": 4, "k": [1, 2, 4], "bootstrap": 300, "seed": 2},
        "stages": {"run": stages},
    })


def test_each_policy_is_compared_with_base_and_the_runs_leafe_adapter(workdir, scripted_adapters, monkeypatch):
    leafe_path = adapter_folder(workdir / "leafe")
    db = open_store(workdir / "s.db")
    insert_adapter(db, "rft-x", adapter_folder(workdir / "rft"), "rft", None, [])
    db.close()

    def fake_distill(context):  # the run's LEAFE adapter, trained on guess/1
        insert_adapter(context.db, f"leafe-run-{context.run_id}", leafe_path, "leafe", context.run_id, ["guess/1"])
        return {"adapter": f"leafe-run-{context.run_id}"}

    monkeypatch.setattr(workbench.distill.stage, "run_distill", fake_distill)
    config = evaluate_config(workdir, ["base", "adapter:leafe-run-{run}", "adapter:rft-x"], ["distill", "evaluate"])
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    leafe = f"adapter:leafe-run-{result.run_id}"
    summary = result.summaries["evaluate"]
    assert summary["successes"] == {"base": 5, leafe: 9, "adapter:rft-x": 5}
    assert summary["leafe_policy"] == leafe

    found = {(p["policy"], p["reference"], p["k"]): p for p in summary["pairs"]}
    assert set(found) == {(policy, reference, k) for policy, reference in
                          [(leafe, "base"), ("adapter:rft-x", "base"), ("adapter:rft-x", leafe)] for k in (1, 2, 4)}
    # Pass@1 per task: LEAFE (0.75, 0.5, 1) against base (0.25, 0, 1) and rft (0, 0.25, 1).
    assert found[(leafe, "base", 1)]["diff"] == pytest.approx(1 / 3)
    assert found[("adapter:rft-x", leafe, 1)]["diff"] == pytest.approx(-1 / 3)
    assert found[("adapter:rft-x", "base", 1)]["diff"] == pytest.approx(0.0)
    for pair in summary["pairs"]:
        assert pair["ci_low"] <= pair["diff"] <= pair["ci_high"] and pair["n_tasks"] == 3
        # LEAFE trained on guess/1, so every pair it is part of holds one task that is not held out.
        assert pair["overlap_tasks"] == (1 if leafe in (pair["policy"], pair["reference"]) else 0)

    as_json = json.loads(json.dumps(result.as_json()))
    assert as_json["pairs"] == summary["pairs"]
    assert {"policy", "reference", "k", "diff", "ci_low", "ci_high"} <= set(as_json["pairs"][0])
    assert as_json["overlap"] == {leafe: ["guess/1"]}
    assert any(m.startswith(f"warning: {leafe} was trained on 1 of the 3") for m in result.messages)

    db = open_store(workdir / "s.db")
    stored = pairs(db, result.run_id)
    assert {(p.policy, p.reference, p.k): p.diff for p in stored} == {
        key: pytest.approx(pair["diff"]) for key, pair in found.items()}
    trained = db.execute(
        """select policy, tasks.name from eval_results join tasks on tasks.id = task_id
           where run_id = ? and trained_on = 1""", [result.run_id]).fetchall()
    assert trained == [(leafe, "guess/1")]
    assert overlap_by_policy(db, result.run_id) == {(result.run_id, leafe): 1}
    db.close()

    console = Console(record=True, width=160)
    for table in evaluation_tables(summary):
        console.print(table)
    text = console.export_text()
    assert f"{leafe} *" in text and "trained on some evaluation tasks" in text
    assert "Paired difference in Pass@k" in text
    assert "+0.33 [" in text  # LEAFE over base at pass@1


def test_without_this_runs_leafe_adapter_policies_are_compared_with_base_only(workdir, scripted_adapters):
    db = open_store(workdir / "s.db")
    # A LEAFE adapter from elsewhere (no run of this store trained it) is one policy among others.
    insert_adapter(db, "old-leafe", adapter_folder(workdir / "old"), "leafe", None, [])
    insert_adapter(db, "rft-x", adapter_folder(workdir / "rft"), "rft", None, [])
    db.close()
    config = evaluate_config(workdir, ["base", "adapter:old-leafe", "adapter:rft-x"], ["evaluate"])
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    summary = result.summaries["evaluate"]
    assert summary["leafe_policy"] is None and summary["overlap"] == {}
    assert {(p["policy"], p["reference"]) for p in summary["pairs"]} == {
        ("adapter:old-leafe", "base"), ("adapter:rft-x", "base")}
    text_console = Console(record=True, width=160)
    for table in evaluation_tables(summary):
        text_console.print(table)
    assert " *" not in text_console.export_text()


def test_a_resumed_evaluation_stores_each_comparison_once(workdir, scripted_adapters):
    db = open_store(workdir / "s.db")
    insert_adapter(db, "rft-x", adapter_folder(workdir / "rft"), "rft", None, [])
    db.close()
    config = evaluate_config(workdir, ["base", "adapter:rft-x"], ["evaluate"])
    first = run_pipeline(config, db_path=workdir / "s.db")
    assert first.status == "finished", first.error
    db = open_store(workdir / "s.db")
    before = pairs(db, first.run_id)
    assert len(before) == 3  # rft against base at k = 1, 2, 4
    # As if the run had been killed after its rollouts, before the stage was marked finished.
    db.execute("update runs set status = 'interrupted' where id = ?", [first.run_id])
    db.execute("update run_stages set status = 'running' where run_id = ?", [first.run_id])
    db.conn.commit()
    db.close()
    again = run_pipeline(config, db_path=workdir / "s.db", resume=True)
    assert again.status == "finished" and again.run_id == first.run_id
    db = open_store(workdir / "s.db")
    assert pairs(db, first.run_id) == before
    db.close()
