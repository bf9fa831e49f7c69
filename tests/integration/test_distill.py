"""Distillation with the real embedded model: a few LoRA steps on a tiny dataset through the
pipeline's distill stage; the loss falls, only the adapter learns, and the adapter loads
back into the hf backend and changes what it answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.db import open_store
from tests.fixtures.datasets import guess_dataset
from workbench.config import config_from_dict
from workbench.distill.adapters import resolve_adapter
from workbench.errors import LeafeError
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration



def test_distill_stage_trains_saves_and_loads_an_adapter(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    import workbench.distill.training as training

    rows = guess_dataset(tmp_path / "data.jsonl")
    captured: dict = {}
    original_add_lora = training.add_lora

    def add_lora_and_remember(model, settings):
        captured["base"] = {k: v.detach().clone() for k, v in model.named_parameters()}
        peft_model = original_add_lora(model, settings)
        captured["model"] = peft_model
        captured["lora_init"] = {
            k: v.detach().clone() for k, v in peft_model.state_dict().items() if "lora_" in k
        }
        return peft_model

    monkeypatch.setattr(training, "add_lora", add_lora_and_remember)
    config = config_from_dict({
        "model": {"backend": "hf", "name": "embedded", "max_new_tokens": 12},
        "env": {"kind": "tests.fixtures.guess_env:GuessEnvironment", "tasks": 2},
        "distill": {"dataset": str(tmp_path / "data.jsonl"), "epochs": 3, "batch_size": 2,
                    "max_length": 128, "learning_rate": 1e-3, "lora_r": 8, "lora_alpha": 16,
                    "report_to": "tensorboard"},
        "stages": {"run": ["distill"]},
    })
    result = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert result.status == "finished", result.error
    summary = result.summaries["distill"]
    assert summary["name"] == f"leafe-run-{result.run_id}"
    folder = Path(summary["path"])
    assert folder == (tmp_path / "leafe.db-files" / "adapters" / summary["name"]).resolve()
    assert (folder / "adapter_config.json").is_file()
    assert list((folder / "runs").glob("events.out.tfevents.*")), "TensorBoard events were not written"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no half-saved folder

    db = open_store(tmp_path / "leafe.db")
    curve = [row["loss"] for row in db.query("select loss from train_log where adapter_id = ? order by step",
                                             [summary["adapter_id"]])]
    assert len(curve) == summary["steps"] == 9  # 6 examples / batch 2 x 3 epochs
    assert curve[-1] < curve[0] * 0.5, curve
    adapter = db["adapters"].get(summary["adapter_id"])
    metrics, lineage = json.loads(adapter["metrics"]), json.loads(adapter["lineage"])
    assert adapter["kind"] == "leafe" and adapter["base_model"] == "embedded"
    assert metrics["n_examples"] == 6 and metrics["train_tokens"] > 0 and metrics["wall_time"] > 0
    assert lineage["dataset_path"] == str(tmp_path / "data.jsonl")
    assert lineage["task_names"] == sorted(row["task"] for row in rows)
    assert lineage["distill"]["lora_r"] == 8

    # Only the adapter learned: base weights are bit-identical, LoRA weights moved.
    trained = captured["model"].state_dict()
    base_after = {
        name.replace(".base_layer", ""): value
        for name, value in captured["model"].get_base_model().named_parameters()
        if "lora_" not in name
    }
    assert base_after.keys() == captured["base"].keys()
    for name, before in captured["base"].items():
        assert torch.equal(base_after[name], before), name
    saved = load_file(folder / "adapter_model.safetensors")
    assert saved and all("lora_" in key for key in saved)
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k)  # B starts at zero
    moved = [k for k, v in captured["lora_init"].items() if "lora_A" in k and not torch.equal(trained[k], v)]
    assert moved

    # The adapter loads back (by name through the store, or by folder) and changes answers.
    from workbench.config import ModelConfig
    from workbench.models.base import Sampling
    from workbench.models.hf import HFGenerator

    assert resolve_adapter(db, summary["name"]) == str(folder)
    assert resolve_adapter(db, f"adapter:{folder}") == str(folder)
    with pytest.raises(LeafeError, match="not an adapter name in the store"):
        resolve_adapter(db, "no-such-adapter")
    prompt = [rows[0]["messages"][:4]]
    greedy = Sampling(temperature=0, max_new_tokens=12)
    generator = HFGenerator(ModelConfig(name="embedded"))
    base_answer = generator.generate(prompt, 1, greedy)[0][0].text
    generator.set_adapter(resolve_adapter(db, summary["name"]))
    tuned_answer = generator.generate(prompt, 1, greedy)[0][0].text
    assert tuned_answer != base_answer
    assert "The secret number is" in tuned_answer
    generator.close()

    # A second adapter may not take a name already in the store.
    config.distill.name = summary["name"]
    again = run_pipeline(config, db_path=tmp_path / "leafe.db")
    assert again.status == "failed" and "already exists" in again.error
    db.close()
