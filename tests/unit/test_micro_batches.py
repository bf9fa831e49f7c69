"""`distill.max_batch_tokens`: a batch too large for memory is trained in parts whose
gradients add up to the whole batch's, so training memory follows the token budget while
the optimiser still steps on `batch_size` examples."""

from __future__ import annotations

import pytest

from tests.fixtures.datasets import guess_dataset
from tests.fixtures.tiny_model import byte_tokenizer, save_tiny_llama
from workbench.config import DistillConfig, ModelConfig
from workbench.distill.data import (
    IGNORE_INDEX,
    collate,
    micro_batches,
    read_examples,
    tokenize_example,
)
from workbench.distill.training import target_count, train_lora, weighted_target_loss


def padded_batch(lengths: list[int]):
    import torch

    width = max(lengths)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    ids = torch.arange(len(lengths) * width).reshape(len(lengths), width) * mask
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, IGNORE_INDEX))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": mask.float()}


def test_parts_hold_every_row_once_within_the_budget_cut_to_their_longest_row():
    lengths = [300, 90, 700, 120, 650, 40, 100, 310]
    batch = padded_batch(lengths)
    parts = micro_batches(batch, 1000)
    rows = sorted(int(row[0]) // batch["input_ids"].shape[1] for part in parts for row in part["input_ids"])
    assert rows == list(range(len(lengths)))  # ids encode their row: every row, once
    for part in parts:
        width = part["input_ids"].shape[1]
        assert width == int(part["attention_mask"].sum(dim=1).max())  # no all-padding columns
        assert part["input_ids"].numel() <= 1000
    # Padded tokens in parts never exceed the whole batch's (here: far fewer).
    assert sum(p["input_ids"].numel() for p in parts) < batch["input_ids"].numel()


def test_a_row_longer_than_the_budget_is_a_part_of_its_own_and_zero_means_whole_batches():
    batch = padded_batch([900, 50, 60])
    parts = micro_batches(batch, 200)
    assert [p["input_ids"].shape for p in parts][0] == (1, 900)
    assert micro_batches(batch, 0) == [batch]
    assert micro_batches(batch, 10_000) == [batch]


def test_the_parts_gradients_add_up_to_the_whole_batchs():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
    ))
    conversations = [
        [{"role": "user", "content": "x" * size}, {"role": "assistant", "content": "answer " * (size // 20 + 1)}]
        for size in (300, 40, 180, 90)
    ]
    examples = [
        tokenize_example(tokenizer, {"messages": m, "kind": kind, "target_start": 1, "task": "t"}, max_length=4096, beta=0.5)
        for m, kind in zip(conversations, ["correction", "rehearsal", "correction", "rehearsal"], strict=True)
    ]
    batch = collate(examples, tokenizer.pad_token_id)

    def gradient(parts_of):
        model.zero_grad()
        total = 0.0
        for part in parts_of:
            loss = weighted_target_loss(model, part, target_count(batch))
            loss.backward()
            total += float(loss)
        return total, torch.cat([p.grad.flatten() for p in model.parameters()])

    whole_loss, whole = gradient([batch])
    parts = micro_batches(batch, 500)
    assert len(parts) >= 3
    parts_loss, in_parts = gradient(parts)
    assert parts_loss == pytest.approx(whole_loss, rel=1e-5)
    assert torch.allclose(in_parts, whole, rtol=1e-4, atol=1e-7)


def test_training_in_parts_records_the_same_loss_curve(tmp_path):
    base = save_tiny_llama(tmp_path / "tiny")
    guess_dataset(tmp_path / "guess.jsonl")
    examples = read_examples(tmp_path / "guess.jsonl")
    model = ModelConfig(backend="hf", name=str(base), device="cpu", dtype="float32")
    # No dropout: its masks are drawn per forward pass, so parts would draw other ones.
    settings = DistillConfig(epochs=2, batch_size=4, max_length=256, lora_dropout=0.0, max_batch_tokens=0)
    whole = train_lora(model, settings, examples, save_to=None)
    parts = train_lora(model, DistillConfig(**{**settings.__dict__, "max_batch_tokens": 128}), examples, save_to=None)
    assert whole.steps == parts.steps >= 2
    assert [r["loss"] for r in parts.losses] == pytest.approx([r["loss"] for r in whole.losses], rel=1e-4)
