"""`distill.share_prefixes`: examples that share most of their prompt are trained as one
row, the prompt once; the loss and the gradients are those of training them row by row."""

from __future__ import annotations

import pytest

from tests.fixtures.datasets import guess_dataset
from tests.fixtures.tiny_model import byte_tokenizer, save_tiny_llama
from workbench.config import DistillConfig, ModelConfig
from workbench.distill.data import collate, micro_batches, read_examples, tokenize_example
from workbench.distill.shared_prefix import (
    ROW_TOKENS,
    PrefixGroupedBatches,
    attention_mask_4d,
    collate_shared,
    context_length,
    prefix_clusters,
)
from workbench.distill.training import target_count, train_lora, weighted_target_loss

SYSTEM = "You move an agent through a grid world."


def example(tokenizer, state: str, question: str, answer: str, kind: str = "expert"):
    content = f"{state}\n\n{question}" if question else state
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content},
                {"role": "assistant", "content": answer}]
    row = {"messages": messages, "kind": kind, "target_start": 2, "task": "t"}
    return tokenize_example(tokenizer, row, max_length=4096, beta=0.5)


def state_examples(tokenizer):
    """Early Experience's shape: two states, each with world-modelling questions, the expert
    action and a reflection (the last two on exactly the same prompt), and an example of
    another kind that shares only the system prompt."""
    rows = []
    for state in ("You are at row 1, column 2, facing south. " * 4, "You are at row 3, column 1, facing east. " * 4):
        rows += [
            example(tokenizer, state, "If you answer left, what will the environment reply?", "You turned left."),
            example(tokenizer, state, "If you answer forward, what will the environment reply?", "You moved."),
            example(tokenizer, state, "", "forward"),
            example(tokenizer, state, "", "forward, because the goal is ahead", "early_experience_reflection"),
        ]
    rows.append(example(tokenizer, "Mission: open the door.", "", "toggle", "rehearsal"))
    return rows


def tiny_model(tokenizer, implementation: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
        attn_implementation=implementation,
    ))


def loss_and_gradient(model, batches, targets: int):
    import torch

    model.zero_grad()
    total = 0.0
    for batch in batches:
        loss = weighted_target_loss(model, batch, targets)
        loss.backward()
        total += float(loss.detach())
    return total, torch.cat([p.grad.flatten() for p in model.parameters()])


# Rows of `state_examples` in one batch: all of them; or only the examples whose prompts are
# the same to the last token (the expert action and the reflection of each state).
BATCHES = {"whole": list(range(9)), "same prompt": [2, 3, 6, 7, 8]}


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("chosen", list(BATCHES))
@pytest.mark.parametrize("row_tokens", [ROW_TOKENS, 4096])
@pytest.mark.parametrize("row_masks", [True, False], ids=["row masks", "shared positions"])
def test_a_packed_batch_has_the_loss_and_gradients_of_its_rows_trained_one_by_one(
    implementation, chosen, row_tokens, row_masks, monkeypatch
):
    import torch

    import workbench.distill.training as training

    # Releases of transformers that cannot keep logits row by row keep the positions of all
    # rows together: slower on packed rows, and the same loss.
    monkeypatch.setattr(training, "reads_row_masks", lambda: row_masks)
    tokenizer = byte_tokenizer()
    rows = [state_examples(tokenizer)[i] for i in BATCHES[chosen]]
    model = tiny_model(tokenizer, implementation)
    plain = collate(rows, tokenizer.pad_token_id)
    packed = collate_shared(rows, tokenizer.pad_token_id, row_tokens)
    # Two groups (one per state) and the unrelated example on its own; in rows long enough,
    # all end to end in one row without padding.
    assert distinct_groups(packed) == 3
    if row_tokens == 4096:
        assert packed["input_ids"].shape[0] == 1 and bool(packed["attention_mask"].all())
    assert int(packed["attention_mask"].sum()) < (0.5 if chosen == "whole" else 0.6) * int(plain["attention_mask"].sum())
    assert target_count(packed) == target_count(plain)

    plain_loss, plain_gradient = loss_and_gradient(model, [plain], target_count(plain))
    packed_loss, packed_gradient = loss_and_gradient(model, [packed], target_count(packed))
    assert packed_loss == pytest.approx(plain_loss, rel=1e-5)
    assert torch.allclose(packed_gradient, plain_gradient, rtol=1e-4, atol=1e-6)

    if packed["input_ids"].shape[0] == 1:
        return
    # Trained in parts (distill.max_batch_tokens), a packed batch still adds up to the same.
    parts = micro_batches(packed, 300)
    assert len(parts) >= 2
    parts_loss, parts_gradient = loss_and_gradient(model, parts, target_count(packed))
    assert parts_loss == pytest.approx(plain_loss, rel=1e-5)
    assert torch.allclose(parts_gradient, plain_gradient, rtol=1e-4, atol=1e-6)


def test_examples_on_the_same_prompt_share_it_up_to_the_token_before_their_answer():
    tokenizer = byte_tokenizer()
    expert, reflection = state_examples(tokenizer)[2:4]
    packed = collate_shared([expert, reflection], tokenizer.pad_token_id)
    segments = packed["segments"][0].tolist()
    shared = segments.count(0)
    assert shared == context_length(expert) - 1 == context_length(reflection) - 1
    # Each answer restarts where the prompt ends, as in its own row.
    positions = packed["position_ids"][0].tolist()
    assert positions[shared] == positions[segments.index(2)] == shared


def test_examples_that_share_only_the_system_prompt_stay_groups_of_their_own():
    tokenizer = byte_tokenizer()
    first = example(tokenizer, "You are at row 1, column 2. " * 3, "", "left")
    second = example(tokenizer, "Mission: open the door, then go through it. " * 2, "", "toggle")
    packed = collate_shared([first, second], tokenizer.pad_token_id)
    assert distinct_groups(packed) == 2
    assert set(packed["segments"].flatten().tolist()) <= {1, -1}  # no shared prefix


def test_groups_in_one_row_do_not_see_each_other():
    import torch

    tokenizer = byte_tokenizer()
    rows = state_examples(tokenizer)
    packed = collate_shared(rows[:2] + rows[4:6], tokenizer.pad_token_id, row_tokens=4096)
    assert packed["input_ids"].shape[0] == 1 and distinct_groups(packed) == 2
    mask = attention_mask_4d(packed["groups"], packed["segments"])[0, 0]
    groups = packed["groups"][0]
    second = int((groups == groups[-1]).nonzero()[0])  # where the second group starts
    assert not mask[second:, :second].any()
    assert mask[second:, second:].any() and torch.equal(mask, mask.tril())


def distinct_groups(packed) -> int:
    return sum(len(set(row) - {-1}) for row in packed["groups"].tolist())


def test_the_sampler_keeps_a_prompts_examples_together_and_sees_every_example_once_a_pass():
    tokenizer = byte_tokenizer()
    rows = state_examples(tokenizer)
    clusters = prefix_clusters(rows)
    assert sorted(len(c) for c in clusters) == [1, 4, 4]
    lengths = [len(row.input_ids) for row in rows]
    samplers = [PrefixGroupedBatches(clusters, lengths, batch_size=4, seed=0, grouped=grouped)
                for grouped in (True, False)]
    assert len(samplers[0]) == 3
    passes = [sampler.batches(epoch) for epoch in range(6) for sampler in samplers]
    for batches in passes:
        assert sorted(i for batch in batches for i in batch) == list(range(len(rows)))
        assert sorted(len(batch) for batch in batches) == [1, 4, 4]
        for cluster in clusters:  # laid end to end: a cluster of 4 spans at most 2 batches of 4
            assert sum(any(i in batch for i in cluster) for batch in batches) <= 2
    assert len({tuple(map(tuple, batches)) for batches in passes}) > 2  # reshuffled by epoch


def test_where_no_prompt_repeats_the_sampler_batches_examples_of_similar_length():
    import random

    lengths = random.Random(3).choices(range(50, 900), k=256)
    singletons = [[i] for i in range(len(lengths))]
    grouped = PrefixGroupedBatches(singletons, lengths, batch_size=8, seed=0)
    plain = PrefixGroupedBatches(singletons, lengths, batch_size=8, seed=0, grouped=False)

    def padding(batches):  # padded slots per batch, summed
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(grouped.batches(0)) < 0.2 * padding(plain.batches(0))


def test_training_with_shared_prompts_runs_fewer_tokens_for_the_same_steps_and_targets(tmp_path):
    base = save_tiny_llama(tmp_path / "tiny")
    guess_dataset(tmp_path / "guess.jsonl")
    rows = read_examples(tmp_path / "guess.jsonl")
    # Every prompt twice, with another answer: the shape of rft's several rollouts per task.
    doubled = rows + [{**row, "messages": [*row["messages"][:-1], {"role": "assistant", "content": "no idea"}]}
                      for row in rows]
    model = ModelConfig(backend="hf", name=str(base), device="cpu", dtype="float32")
    settings = DistillConfig(epochs=2, batch_size=4, max_length=256, lora_dropout=0.0)
    shared = train_lora(model, settings, doubled, save_to=None)
    alone = train_lora(model, DistillConfig(**{**settings.__dict__, "share_prefixes": False}), doubled, save_to=None)
    assert shared.steps == alone.steps
    assert shared.target_tokens == alone.target_tokens
    assert shared.tokens < 0.8 * alone.tokens
    assert shared.epoch_losses[-1] < shared.epoch_losses[0]
