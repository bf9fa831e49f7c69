"""Evaluation batches policies together (`evaluate.batching = "policies"`: every policy's
episodes in lock-step, adapters merged into copies of their own, identical prompts encoded
once) and still plays exactly the episodes the sequential baseline plays: each episode
samples from its own seed. A tiny random Llama and two random LoRA adapters in float32."""

from __future__ import annotations

import pytest

from store.db import open_store
from tests.fixtures.tiny_model import save_tiny_llama
from workbench.config import config_from_dict
from workbench.pipeline import run_pipeline

PARITY_ENV = "tests.fixtures.parity_env:ParityEnvironment"


def random_lora(base, folder, seed: int) -> str:
    """A LoRA adapter with random (not zero) weights: it changes what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    for name, weight in peft_model.named_parameters():
        if "lora_" in name:
            torch.nn.init.normal_(weight, std=0.5)
    peft_model.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def tiny_policies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    base = save_tiny_llama(folder / "base")
    return base, [random_lora(base, folder / f"lora{i}", seed=i) for i in (1, 2)]


def evaluate(workdir, tiny_policies, batching: str, temperature: float, store: str):
    base, adapters = tiny_policies
    config = config_from_dict({
        "model": {"backend": "hf", "name": str(base), "dtype": "float32", "device": "cpu",
                  "max_new_tokens": 6, "batch_size": 4},
        "env": {"kind": PARITY_ENV, "tasks": 3, "max_steps": 2},
        "evaluate": {"policies": ["base", *(f"adapter:{a}" for a in adapters)], "n": 6, "k": [1, 2],
                     "temperature": temperature, "seed": 5, "bootstrap": 50, "batching": batching},
        "stages": {"run": ["evaluate"]},
    })
    result = run_pipeline(config, db_path=workdir / store)
    assert result.status == "finished", result.error
    db = open_store(workdir / store)
    counts = {(row["policy"], row["task_id"]): (row["n"], row["c"])
              for row in db.query("select policy, task_id, n, c from eval_results")}
    actions = {}
    for row in db.query(
        """select episodes.policy, tasks.name, episodes.rollout, group_concat(nodes.action, ' | ') as actions
           from episodes join tasks on tasks.id = episodes.task_id join nodes on nodes.episode_id = episodes.id
           where nodes.parent_id is not null group by episodes.id order by episodes.id"""
    ):
        actions[(row["policy"].split("/")[-1], row["name"], row["rollout"])] = row["actions"]
    db.close()
    return counts, actions


@pytest.mark.parametrize("temperature", [0.9, 0.0], ids=["seeded-sampling", "greedy"])
def test_policies_batched_together_play_the_same_episodes_as_one_after_another(workdir, tiny_policies, temperature):
    together, together_actions = evaluate(workdir, tiny_policies, "policies", temperature, "together.db")
    apart, apart_actions = evaluate(workdir, tiny_policies, "sequential", temperature, "apart.db")
    assert together == apart
    assert together_actions == apart_actions
    # The comparison means something: the adapters change the answers, and the counts are
    # neither all zero nor all full.
    for adapter in ("lora1", "lora2"):
        assert any(together_actions[(adapter, task, r)] != together_actions[("base", task, r)]
                   for (_, task, r) in together_actions)
    assert 0 < sum(c for _, c in together.values()) < sum(n for n, _ in together.values())
    if temperature > 0:  # each rollout of a task samples from its own seed
        assert len({together_actions[("base", "parity/0", r)] for r in range(6)}) > 1
