"""The vllm backend inside a whole run: an adapter the distill stage has just written is
evaluated on the engine that explored, without restarting it; and greedy actions agree
with the hf backend's. Run in .venv-vllm: `make test-vllm` (pytest -m vllm)."""

from __future__ import annotations

import importlib.util

import pytest

from store.db import open_store
from tests.conftest import ROOT
from tests.fixtures.datasets import guess_dataset
from workbench.config import ModelConfig, config_from_dict
from workbench.envs.coding.answers import extract_code
from workbench.models.base import Sampling
from workbench.pipeline import run_pipeline

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not HAVE_VLLM, reason="vllm is not installed here (make vllm-setup)"),
]

EASY_TASKS = ROOT / "examples" / "easy_tasks.jsonl"


def test_a_fresh_adapter_is_evaluated_on_the_engine_that_explored(tmp_path, monkeypatch) -> None:
    import workbench.models.vllm as vllm_backend

    engines: list[object] = []
    original_init = vllm_backend.VLLMGenerator.__init__

    def counting_init(self, *args, **kwargs):
        engines.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(vllm_backend.VLLMGenerator, "__init__", counting_init)
    monkeypatch.chdir(tmp_path)
    guess_dataset(tmp_path / "data.jsonl")
    config = config_from_dict({
        "model": {"backend": "vllm", "name": "embedded", "max_new_tokens": 48, "max_model_len": 2048},
        "env": {"kind": "coding", "suite": str(EASY_TASKS), "tasks": 1, "max_steps": 1},
        "explore": {"rollouts_per_task": 1},
        "distill": {"dataset": str(tmp_path / "data.jsonl"), "epochs": 1, "batch_size": 2,
                    "max_length": 256, "lora_r": 4, "lora_alpha": 8},
        "evaluate": {"policies": ["base", "adapter:leafe-run-{run}"], "n": 2, "k": [1, 2]},
        "stages": {"run": ["explore", "distill", "evaluate"]},
    })
    result = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert result.status == "finished", result.error

    assert len(engines) == 1, "the engine was started again for the adapter"
    assert engines[0].adapter_id is not None, "the adapter never reached the engine"
    db = open_store(tmp_path / "leafe.db")
    adapter_policy = f"adapter:leafe-run-{result.run_id}"
    policies = {row["policy"] for row in db.query("select policy from evals where run_id = ?", [result.run_id])}
    assert policies == {"base", adapter_policy}
    played = db.execute(
        "select count(*) from episodes where run_id = ? and policy = ?", [result.run_id, adapter_policy]
    ).fetchone()[0]
    assert played == 2  # n rollouts of the one task, played with the adapter


def test_greedy_actions_agree_with_the_hf_backend_in_float32() -> None:
    """The README's agreement claim: same prompts, greedy, float32, the parsed actions agree
    on most prompts (bfloat16 flips near-ties; see benchmarks/agreement.py)."""
    from workbench.envs import open_suite
    from workbench.models import make_generator
    from workbench.prompts import build_messages

    # The first turns exploration sends: each task's observation through the run's prompts.
    config = config_from_dict({"env": {"kind": "coding", "suite": str(EASY_TASKS)}})
    suite = open_suite(config.env)
    chats = [build_messages(config.prompts, [{"observation": suite.new_environment().reset(task)}],
                            config.env.max_steps)
             for task in suite.load_tasks(6)]
    suite.close()
    greedy = Sampling(temperature=0, max_new_tokens=64)
    actions = {}
    for backend in ("hf", "vllm"):
        generator = make_generator(ModelConfig(backend=backend, name="embedded", dtype="float32",
                                               max_model_len=2048))
        try:
            actions[backend] = [extract_code(row[0].text) for row in generator.generate(chats, 1, greedy)]
        finally:
            generator.close()
    same = sum(a == b for a, b in zip(actions["hf"], actions["vllm"], strict=True))
    assert same >= 5, f"only {same} of {len(chats)} greedy actions agree"
