"""`distill.lora_precision`: on a bfloat16 base the LoRA products run under bfloat16
autocast instead of copying every adapted layer's input to float32, while the LoRA weights
and the optimiser stay float32; a float32 base, or `float32`, trains as before."""

from __future__ import annotations

import pytest

from tests.fixtures.datasets import guess_dataset
from tests.fixtures.tiny_model import save_tiny_llama
from tests.fixtures.training import trained_both_ways
from workbench.config import DistillConfig, ModelConfig
from workbench.context import SilentProgress
from workbench.distill.data import read_examples
from workbench.distill.training import (
    TrainResult,
    make_accelerator,
    prepare_training,
    train_step,
)


def prepared(tmp_path, dtype: str, precision: str):
    base = save_tiny_llama(tmp_path / "tiny")
    guess_dataset(tmp_path / "guess.jsonl")
    model = ModelConfig(backend="hf", name=str(base), device="cpu", dtype=dtype)
    settings = DistillConfig(epochs=1, batch_size=4, max_length=256, lora_precision=precision, lora_dropout=0.0)
    return prepare_training(model, settings, read_examples(tmp_path / "guess.jsonl"), make_accelerator(model),
                            TrainResult(), SilentProgress())


def lora_input_dtypes(training) -> set:
    """The dtype each LoRA A product receives its input in, over one training step."""
    seen = set()
    handles = [
        module.register_forward_hook(lambda _m, inputs, _o: seen.add(inputs[0].dtype))
        for name, module in training.model.named_modules() if name.endswith("lora_A.default")
    ]
    train_step(training, next(iter(training.loader)))
    for handle in handles:
        handle.remove()
    return seen


def test_on_a_bfloat16_base_lora_inputs_stay_bfloat16_and_the_adapter_trains_in_float32(tmp_path):
    import torch

    training = prepared(tmp_path, "bfloat16", "bfloat16")
    assert training.lora_in_bfloat16
    trainable = [p for p in training.model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    assert lora_input_dtypes(training) == {torch.bfloat16}  # no float32 copy of any input
    assert {p.dtype for p in trainable} == {torch.float32}
    assert any(not torch.equal(b, p) for b, p in zip(before, trainable, strict=True))  # the step updated them


@pytest.mark.parametrize(("dtype", "precision"), [("bfloat16", "float32"), ("float32", "bfloat16")])
def test_float32_asked_for_or_a_float32_base_copies_inputs_to_float32_as_peft_does(tmp_path, dtype, precision):
    import torch

    training = prepared(tmp_path, dtype, precision)
    assert not training.lora_in_bfloat16
    assert lora_input_dtypes(training) == {torch.float32}


def test_bfloat16_lora_learns_the_data_as_float32_lora_does(tmp_path):
    # Batches as the test was calibrated on (one example a row): on six examples an epoch's
    # mean loss follows which examples share a batch more than it follows the precision.
    settings = DistillConfig(epochs=4, batch_size=4, max_length=256, lora_dropout=0.0, learning_rate=1e-2,
                             share_prefixes=False)
    low, high = trained_both_ways(tmp_path, "bfloat16", settings, lora_precision="float32")
    assert low.epoch_losses[-1] < low.epoch_losses[0]
    # Same data, same order, no dropout: the curves differ only by bfloat16 rounding.
    assert low.epoch_losses == pytest.approx(high.epoch_losses, rel=0.05)
