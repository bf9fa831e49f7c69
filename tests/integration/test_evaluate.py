"""The evaluate stage: independent rollouts per policy and task, (n, c) and Pass@k with
bootstrap intervals in the store, the printed table, the overlap warning, and adapters
applied on the hf backend."""

from __future__ import annotations

import json
from math import comb

import pytest
from rich.console import Console

from store.db import open_store
from workbench.config import config_from_dict
from workbench.errors import ConfigError
from workbench.evaluate import load_pass_at_k_table, pass_at_k_table
from workbench.pipeline import run_pipeline

GUESS = "tests.fixtures.guess_env:GuessEnvironment"


def exact(n: int, c: int, k: int) -> float:
    return 1 - comb(n - c, k) / comb(n, k)


def test_scripted_policy_gets_exact_counts_and_pass_at_k(tmp_path):
    # With one step per episode, the i-th rollout of a task plays the script's i-th action.
    script = tmp_path / "script.jsonl"
    script.write_text("\n".join(json.dumps(line) for line in [
        {"task_id": "guess/0", "actions": ["3", "5", "3", "1"]},  # secret 3: c = 2
        {"task_id": "guess/1", "actions": ["0"]},  # secret 7: c = 0
        {"task_id": "guess/2", "actions": ["5"]},  # secret 5: c = 4
    ]) + "\n")
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": GUESS, "tasks": 3, "max_steps": 1},
        "evaluate": {"policies": ["base"], "n": 4, "k": [1, 2, 4], "bootstrap": 200, "seed": 3},
        "stages": {"run": ["evaluate"]},
    })
    result = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert result.status == "finished", result.error
    summary = result.summaries["evaluate"]
    assert summary["successes"] == {"base": 6} and summary["tasks"] == 3

    db = open_store(tmp_path / "leafe.db")
    counts = {row["name"]: (row["n"], row["c"]) for row in db.query(
        "select tasks.name, n, c from eval_results join tasks on tasks.id = task_id where run_id = ?",
        [result.run_id])}
    assert counts == {"guess/0": (4, 2), "guess/1": (4, 0), "guess/2": (4, 4)}
    episodes = db.execute(
        "select count(*) from episodes where run_id = ? and purpose = 'evaluate' and policy = 'base'",
        [result.run_id]).fetchone()[0]
    assert episodes == 12
    for k in (1, 2, 4):
        expected = (exact(4, 2, k) + exact(4, 0, k) + exact(4, 4, k)) / 3
        cell = summary["table"]["base"][str(k)]
        assert cell["pass_at_k"] == pytest.approx(expected)
        assert cell["ci_low"] <= cell["pass_at_k"] <= cell["ci_high"]
        row = db.execute("select pass_at_k, n_tasks from evals where run_id = ? and policy = 'base' and k = ?",
                         [result.run_id, k]).fetchone()
        assert row == (pytest.approx(expected), 3)
    assert load_pass_at_k_table(db, result.run_id) == summary["table"]
    assert result.as_json()["pass_at_k"] == summary["table"]

    console = Console(record=True, width=120)
    console.print(pass_at_k_table(summary["table"]))
    text = console.export_text()
    assert "pass@1" in text and "pass@4" in text
    assert f"{summary['table']['base']['1']['pass_at_k']:.2f} [" in text
    db.close()


def test_k_above_n_is_refused_before_any_rollout(tmp_path):
    config = config_from_dict({
        "model": {"backend": "scripted", "script": "/dev/null"},
        "env": {"kind": GUESS, "tasks": 1, "max_steps": 1},
        "evaluate": {"n": 2, "k": [1, 2]},
        "stages": {"run": ["evaluate"]},
    })
    config.evaluate.k = [1, 4]  # past the config check, as a resumed old config could be
    (tmp_path / "script.jsonl").write_text('{"task_id": "guess/0", "actions": ["3"]}\n')
    config.model.script = str(tmp_path / "script.jsonl")
    result = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert result.status == "failed"
    assert "pass@4 needs at least 4 rollouts" in result.error
    assert result.counts["episodes"] == 0


def test_unknown_policy_string_is_refused(tmp_path):
    # Refused when the config loads, before any policy is evaluated.
    (tmp_path / "script.jsonl").write_text('{"task_id": "guess/0", "actions": ["3"]}\n')
    with pytest.raises(ConfigError, match="'adapter:NAME_OR_PATH'"):
        config_from_dict({
            "model": {"backend": "scripted", "script": str(tmp_path / "script.jsonl")},
            "env": {"kind": GUESS, "tasks": 1, "max_steps": 1},
            "evaluate": {"policies": ["base", "my-adapter"], "n": 1, "k": [1]},
            "stages": {"run": ["evaluate"]},
        })
    assert not (tmp_path / "leafe.db").exists()


@pytest.mark.integration
def test_adapter_policy_on_the_real_model_warns_on_overlap(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench.config import ModelConfig
    from workbench.models.hf import load_model_and_tokenizer

    # An adapter with random (non-zero) LoRA weights, recorded as trained on guess/0.
    torch.manual_seed(0)
    model, _, _ = load_model_and_tokenizer(ModelConfig(device="cpu"))
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(str(tmp_path / "noise"))
    db = open_store(tmp_path / "leafe.db")
    db["adapters"].insert({
        "name": "noise", "path": str(tmp_path / "noise"), "base_model": "embedded", "kind": "leafe",
        "metrics": "{}", "lineage": json.dumps({"task_names": ["guess/0"]}), "created_at": "now",
    })
    db.close()

    config = config_from_dict({
        "model": {"backend": "hf", "name": "embedded", "max_new_tokens": 4, "batch_size": 8},
        "env": {"kind": GUESS, "tasks": 2, "max_steps": 2},
        "evaluate": {"policies": ["base", "adapter:noise", f"adapter:{tmp_path / 'noise'}"],
                     "n": 2, "k": [1, 2], "bootstrap": 100},
        "stages": {"run": ["evaluate"]},
    })
    result = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert result.status == "finished", result.error
    warnings = [m for m in result.messages if m.startswith("warning: adapter:noise")]
    assert warnings and "guess/0" in warnings[0] and "1 of the 2" in warnings[0]
    table = result.summaries["evaluate"]["table"]
    assert set(table) == {"base", "adapter:noise", f"adapter:{tmp_path / 'noise'}"}

    db = open_store(tmp_path / "leafe.db")
    actions = {
        policy: [row[0] for row in db.execute(
            """select nodes.action from nodes join episodes on episodes.id = nodes.episode_id
               where episodes.policy = ? and nodes.depth = 1 order by episodes.task_id, episodes.rollout""",
            [policy])]
        for policy in table
    }
    # The same adapter by name or by folder acts the same (same seeds); the base differs.
    assert actions["adapter:noise"] == actions[f"adapter:{tmp_path / 'noise'}"]
    assert actions["adapter:noise"] != actions["base"]
    assert db.execute("select count(*) from eval_results where run_id = ?", [result.run_id]).fetchone()[0] == 6
    db.close()


def test_run_placeholder_names_this_runs_adapters():
    from workbench.evaluate import expand_policies

    assert expand_policies(["base", "adapter:leafe-run-{run}", "adapter:/x/y"], 7) == [
        "base", "adapter:leafe-run-7", "adapter:/x/y"]
