"""`distill.method = "full"`: every weight of the policy is trained, the result is stored
like an adapter (lineage, loss curve) and loads wherever an adapter name is accepted."""

from __future__ import annotations

import dataclasses

import pytest

from store import adapters
from store.db import open_store
from tests.fixtures.datasets import guess_dataset
from tests.fixtures.tiny_model import save_tiny_llama
from workbench.config import DistillConfig, ModelConfig
from workbench.distill.adapters import is_full_model_folder, resolve_adapter
from workbench.distill.stage import train_adapter
from workbench.models.base import Sampling


def weights(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture
def trained(tmp_path):
    base = save_tiny_llama(tmp_path / "tiny")
    data = tmp_path / "guess.jsonl"
    guess_dataset(data)
    db = open_store(tmp_path / "leafe.db")
    model = ModelConfig(backend="hf", name=str(base), device="cpu", dtype="float32")
    settings = DistillConfig(method="full", learning_rate=1e-3, epochs=2, batch_size=2, max_length=256)
    adapter_id = train_adapter(db, dataset_path=str(data), dataset_id=None, settings=settings, model=model,
                               name="guess-full", output=str(tmp_path / "guess-full"), run_id=None)
    return db, model, base, tmp_path / "guess-full", adapter_id


def test_a_full_finetune_changes_every_weight_and_is_recorded_like_an_adapter(trained):
    db, _, base, folder, adapter_id = trained
    before, after = weights(base), weights(folder)
    assert set(after) == set(before)
    unchanged = [name for name in before if bool((before[name] == after[name]).all())]
    assert unchanged == []
    row = adapters.by_name(db, "guess-full")
    assert row["id"] == adapter_id and row["metrics"]["method"] == "full"
    assert row["lineage"]["task_names"] == sorted(f"guess/{s}" for s in (3, 7, 9, 1, 8, 6))
    curve = list(db.query("select step, loss from train_log where adapter_id = ? order by step", [adapter_id]))
    assert len(curve) == row["metrics"]["steps"] >= 2
    assert is_full_model_folder(folder) and not is_full_model_folder(base)


def test_a_full_finetune_loads_as_model_adapter_and_swaps_back_to_the_base(trained):
    import torch

    from workbench.models.hf import HFGenerator

    db, model, _, folder, _ = trained
    path = resolve_adapter(db, "adapter:guess-full")
    assert path == str(folder.resolve())
    generator = HFGenerator(dataclasses.replace(model, adapter=path))
    tuned = weights(folder)
    name = "model.layers.0.mlp.down_proj.weight"
    assert torch.equal(generator.model.state_dict()[name], tuned[name])
    prompt = [{"role": "user", "content": "Guess a number from 0 to 9."}]
    [[completion]] = generator.generate([prompt], 1, Sampling(temperature=0, max_new_tokens=4))
    assert completion.tokens >= 1
    generator.set_adapter(None)
    assert not torch.equal(generator.model.state_dict()[name], tuned[name])
    assert generator.adapter_kind is None


def test_evaluate_gives_a_full_finetune_its_own_weights(trained, tmp_path):
    """The evaluate stage's per-policy loading: base is the base, the fine-tune its weights."""
    import torch

    from workbench.config import Config
    from workbench.context import StageContext
    from workbench.evaluate import PolicyGenerators

    db, model, _, folder, _ = trained
    config = Config(model=model)
    context = StageContext(db=db, run_id=0, config=config, suite=None)  # type: ignore[arg-type]
    generators = PolicyGenerators(context)
    name = "model.layers.0.mlp.down_proj.weight"
    try:
        tuned = generators.for_policy("adapter:guess-full")
        assert torch.equal(tuned.model.state_dict()[name], weights(folder)[name])
        base = generators.for_policy("base")
        assert not torch.equal(base.model.state_dict()[name], weights(folder)[name])
    finally:
        generators.close()
        context.close()
