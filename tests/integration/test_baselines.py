"""The outcome-driven baselines under LEAFE's environment-step budget: rejection-sampling
SFT (rft), GRPO and Early Experience, each ending in a recorded adapter."""

from __future__ import annotations

import json

import pytest

from store.db import open_store
from tests.fixtures.guess_env import GuessEnvironment
from workbench.baselines import rft
from workbench.baselines._common import steps_used
from workbench.budget import step_budget
from workbench.config import config_from_dict
from workbench.context import StageContext
from workbench.distill.data import read_examples
from workbench.envs import open_suite
from workbench.pipeline import run_pipeline


class ExpertGuess(GuessEnvironment):
    """The guessing game with the secret in plain sight and an expert who says it: easy
    enough that the 135M model succeeds now and then, so every baseline has data."""

    def reset(self, task):
        super().reset(task)
        return f"The secret number is {self.secret}. Answer with that number."

    def expert_action(self) -> str:
        return str(self.secret)

    def step(self, action: str):
        result = super().step(action)
        # The reply quotes the answer, so an alternative worded unlike the expert's bare
        # number has an outcome of its own and Early Experience has something to reflect on.
        return result._replace(observation=f"{result.observation} You said: {action.strip()[:40]}")


EXPERT_GUESS = f"{__name__}:ExpertGuess"


def test_wave_planning_never_exceeds_the_budget():
    tasks = list(range(4))
    assert rft.plan_waves(tasks, remaining=30, max_steps=3, waves_left=None) == (tasks, 2)
    assert rft.plan_waves(tasks, remaining=30, max_steps=3, waves_left=1) == (tasks, 1)
    assert rft.plan_waves(tasks, remaining=7, max_steps=3, waves_left=None) == (tasks[:2], 1)
    assert rft.plan_waves(tasks, remaining=2, max_steps=3, waves_left=None) == ([], 0)
    assert rft.plan_waves(tasks, remaining=30, max_steps=3, waves_left=0) == ([], 0)


def test_rft_rollouts_spend_the_budget_and_keep_successes(tmp_path):
    # guess/0 (secret 3) always fails in 3 steps; guess/1 (secret 7) succeeds at once.
    script = tmp_path / "script.jsonl"
    script.write_text('{"task_id": "guess/0", "actions": ["0"]}\n{"task_id": "guess/1", "actions": ["7"]}\n')
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": "tests.fixtures.guess_env:GuessEnvironment", "tasks": 2, "max_steps": 3},
        "explore": {"rollouts_per_task": 2},
        "stages": {"run": ["explore"]},
    })
    result = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert result.status == "finished", result.error
    db = open_store(tmp_path / "leafe.db")
    suite = open_suite(config.env)
    context = StageContext(db=db, run_id=result.run_id, config=config, suite=suite)
    try:
        tasks = suite.load_tasks(config.env.tasks)
        budget = step_budget(context, len(tasks))
        assert (budget.steps, budget.source) == (8, "leafe")  # 2 x 3 failing + 2 x 1 succeeding
        waves = rft.roll_out_within_budget(context, tasks, budget)
        # Wave 1 on both tasks (worst case 6 <= 8) used 4; then only one 3-step episode fits.
        assert waves == 2
        assert steps_used(context, rft.PURPOSE) == 7
        episodes = db.execute(
            "select count(*), sum(success) from episodes where run_id = ? and purpose = ?",
            [result.run_id, rft.PURPOSE]).fetchone()
        assert episodes == (3, 1)
        examples = rft.successful_examples(context)
        assert len(examples) == 1
        assert examples[0]["kind"] == "rft" and examples[0]["task"] == "guess/1"
        messages = examples[0]["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert messages[-1]["content"] == "7" and examples[0]["target_start"] == 2
        # Nothing is left to spend, so a second call plays nothing.
        assert rft.roll_out_within_budget(context, tasks, budget) == 2
        assert steps_used(context, rft.PURPOSE) == 7
    finally:
        context.close()
        suite.close()
        db.close()


@pytest.mark.integration
def test_three_baselines_train_adapters_within_leafes_budget(tmp_path, capsys):
    config = config_from_dict({
        "model": {"backend": "hf", "name": "embedded", "max_new_tokens": 6, "batch_size": 8},
        "env": {"kind": EXPERT_GUESS, "tasks": 2, "max_steps": 2},
        "explore": {"rollouts_per_task": 3, "seed": 1},
        "distill": {"epochs": 2, "batch_size": 4, "max_length": 256, "lora_r": 4, "lora_alpha": 8},
        "baselines": {"alternatives": 2, "grpo_group_size": 2, "grpo_steps": 2},
        "stages": {"run": ["explore", "baseline:rft", "baseline:early_experience", "baseline:grpo"]},
    })
    result = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert result.status == "finished", result.error
    assert capsys.readouterr().out == ""  # stdout is kept for --json: trainers must not print there
    db = open_store(tmp_path / "leafe.db")
    budget = db.execute(
        """select count(*) from nodes join episodes on episodes.id = nodes.episode_id
           where run_id = ? and purpose = 'explore' and parent_id is not null""", [result.run_id]).fetchone()[0]
    adapters = {row["kind"]: row for row in db.query("select * from adapters where run_id = ?", [result.run_id])}
    assert set(adapters) == {"rft", "early_experience", "grpo"}
    for kind, row in adapters.items():
        metrics, lineage = json.loads(row["metrics"]), json.loads(row["lineage"])
        assert row["name"] == f"{kind.replace('_', '-')}-run-{result.run_id}"
        assert metrics["env_steps_budget"] == budget
        assert 0 < metrics["env_steps_used"] <= budget
        assert lineage["dataset_id"] == row["dataset_id"]
        assert db.execute("select count(*) from train_log where adapter_id = ?", [row["id"]]).fetchone()[0] >= 1
        assert (tmp_path / "leafe.db-files" / "adapters" / row["name"] / "adapter_config.json").is_file()
        summary = result.summaries[f"baseline:{kind}"]
        assert summary["adapter_id"] == row["id"] and summary["env_steps_used"] == metrics["env_steps_used"]

    datasets = {row["kind"]: row for row in db.query("select * from datasets where run_id = ?", [result.run_id])}
    assert set(datasets) == {"rft", "early_experience", "grpo"}
    early = read_examples(datasets["early_experience"]["path"])
    kinds = {row["kind"] for row in early}
    assert kinds == {"early_experience_world", "early_experience_reflection", "expert"}
    expert = next(row for row in early if row["kind"] == "expert")
    assert expert["messages"][-1]["content"] in {"3", "7"}
    # Self-reflection: the expert action first, then why it beats the alternative tried.
    reflection = next(row for row in early if row["kind"] == "early_experience_reflection")
    target = reflection["messages"][reflection["target_start"]]["content"]
    assert target.split("\n\n")[0] in {"3", "7"} and len(target.split("\n\n", 1)[1].split()) >= 4
    world = next(row for row in early if row["kind"] == "early_experience_world")
    assert "what will the environment reply" in world["messages"][-2]["content"]
    rft_rows = read_examples(datasets["rft"]["path"])
    assert rft_rows and all(row["kind"] == "rft" for row in rft_rows)
    # RFT keeps successes only: every kept conversation ends in the right number.
    for row in rft_rows:
        secret = "3" if row["task"] == "guess/0" else "7"
        assert secret in row["messages"][-1]["content"]
    db.close()


@pytest.mark.integration
def test_multi_turn_grpo_rollout_masks_the_environments_turns(tmp_path):
    from types import SimpleNamespace

    from workbench.baselines._grpo_rollout import EpisodeRollout, environment_reward
    from workbench.baselines.grpo import prompt_examples
    from workbench.models.hf import load_model_and_tokenizer

    config = config_from_dict({
        "model": {"backend": "hf", "name": "embedded"},
        "env": {"kind": "tests.fixtures.guess_env:GuessEnvironment", "tasks": 2, "max_steps": 3},
        "stages": {"run": ["baseline:grpo"]},
    })
    db = open_store(tmp_path / "leafe.db")
    suite = open_suite(config.env)
    context = StageContext(db=db, run_id=0, config=config, suite=suite)
    tasks = suite.load_tasks(2)
    examples = prompt_examples(context, tasks)
    model, tokenizer, _ = load_model_and_tokenizer(config.model)
    trainer = SimpleNamespace(processing_class=tokenizer, model=model,
                              accelerator=SimpleNamespace(unwrap_model=lambda m: m))
    by_prompt = EpisodeRollout.index_tasks(examples, tasks)
    assert [len(options) for options in by_prompt.values()] == [2]  # the guess game's prompts are all alike
    rollout = EpisodeRollout(context, by_prompt, budget=100, max_new_tokens=8, temperature=1.0, top_p=1.0)
    prompts = [e["messages"] for e in examples for _ in range(2)]
    output = rollout(prompts, trainer)
    assert output["logprobs"] is None and len(output["completion_ids"]) == 4
    for ids, mask, prompt_ids, reward in zip(output["completion_ids"], output["env_mask"], output["prompt_ids"],
                                              output["env_reward"], strict=True):
        assert len(ids) == len(mask) and 0.0 <= reward <= 1.0
        model_text = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
        environment_text = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
        assert "Guess a number" in tokenizer.decode(prompt_ids)
        assert "<|im_start|>user" not in model_text  # feedback turns are never the policy's
        turns = tokenizer.decode(ids).count("<|im_start|>user")
        assert environment_text.count("<|im_start|>user") == turns
        if turns:
            assert "attempt(s) left" in environment_text or "Steps left" in environment_text
    # Every turn is one environment step, at most max_steps per episode.
    assert 4 <= rollout.used <= 4 * 3
    assert environment_reward([], [], env_reward=output["env_reward"]) == output["env_reward"]
    context.close()
    suite.close()
    db.close()


@pytest.mark.integration
def test_multi_turn_grpo_stage_plays_whole_episodes_within_budget(tmp_path, capsys):
    config = config_from_dict({
        "model": {"backend": "hf", "name": "embedded", "max_new_tokens": 6, "batch_size": 8},
        "env": {"kind": EXPERT_GUESS, "tasks": 2, "max_steps": 2},
        "explore": {"rollouts_per_task": 2},
        "distill": {"lora_r": 4, "lora_alpha": 8},
        "baselines": {"grpo_group_size": 2, "grpo_steps": 3, "grpo_multi_turn": True},
        "stages": {"run": ["explore", "baseline:grpo"]},
    })
    result = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert result.status == "finished", result.error
    assert capsys.readouterr().out == ""
    db = open_store(tmp_path / "leafe.db")
    row = db.execute("select metrics, lineage from adapters where kind = 'grpo'").fetchone()
    metrics, lineage = json.loads(row[0]), json.loads(row[1])
    assert metrics["multi_turn"] is True and lineage["grpo"]["multi_turn"] is True
    # Each step's group of 2 may take 2 turns each: the plan fits the budget in the worst case.
    assert metrics["steps"] == min(3, metrics["env_steps_budget"] // 4)
    assert metrics["steps"] * 2 <= metrics["env_steps_used"] <= metrics["env_steps_budget"]
    db.close()
