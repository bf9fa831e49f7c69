"""Distillation data: loss masks on exactly the target answers, rehearsal weight, truncation
that never cuts a target, length-grouped batches and the weighted loss.

A byte-level tokenizer with a ChatML template (the tiny model's, tests/fixtures/tiny_model.py)
is built in memory, one token per byte, so these tests need no model files and every label
can be checked character by character.
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures.tiny_model import byte_tokenizer
from workbench.distill.data import (
    IGNORE_INDEX,
    LengthGroupedBatches,
    check_example,
    collate,
    read_examples,
    tokenize_example,
)
from workbench.errors import LeafeError


@pytest.fixture(scope="module")
def tokenizer():
    return byte_tokenizer()


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Task: add."},
    {"role": "assistant", "content": "def f(): wrong"},
    {"role": "user", "content": "Failed: 0 of 2 passed."},
    {"role": "assistant", "content": "def f(): right"},
]


def example(target_start: int, kind: str = "correction", messages=None) -> dict:
    return check_example(
        {"messages": messages or CONVERSATION, "kind": kind, "target_start": target_start,
         "task": "t/0", "correction_id": 7},
        "test",
    )


def target_runs(tokenizer, tokenized) -> list[str]:
    """The decoded text of each contiguous run of target tokens."""
    runs, current = [], []
    for token, label in zip(tokenized.input_ids, tokenized.labels, strict=True):
        if label != IGNORE_INDEX:
            assert label == token  # a target's label is the token itself
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


def test_only_answers_from_target_start_are_targets(tokenizer):
    tokenized = tokenize_example(tokenizer, example(4), max_length=4096, beta=0.5)
    # The earlier assistant turn (index 2) is context, like the system and user turns.
    assert target_runs(tokenizer, tokenized) == ["def f(): right<|im_end|>"]
    full = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert tokenizer.decode(tokenized.input_ids) == full
    masked = [t for t, label in zip(tokenized.input_ids, tokenized.labels, strict=True) if label == IGNORE_INDEX]
    assert tokenizer.decode(masked) == full.replace("def f(): right<|im_end|>", "")


def test_every_answer_is_a_target_when_target_start_is_zero(tokenizer):
    tokenized = tokenize_example(tokenizer, example(0), max_length=4096, beta=0.5)
    assert target_runs(tokenizer, tokenized) == ["def f(): wrong<|im_end|>", "def f(): right<|im_end|>"]


def test_rehearsal_weighs_beta_and_corrections_one(tokenizer):
    rehearsal = tokenize_example(tokenizer, example(4, "rehearsal"), max_length=4096, beta=0.25)
    correction = tokenize_example(tokenizer, example(4, "correction"), max_length=4096, beta=0.25)
    rft = tokenize_example(tokenizer, example(4, "rft"), max_length=4096, beta=0.25)
    assert (rehearsal.weight, correction.weight, rft.weight) == (0.25, 1.0, 1.0)
    batch = collate([rehearsal, correction], pad_id=0)
    targets = batch["labels"] != IGNORE_INDEX
    assert set(batch["weights"][0][targets[0]].tolist()) == {0.25}
    assert set(batch["weights"][1][targets[1]].tolist()) == {1.0}
    assert float(batch["weights"][~targets].abs().sum()) == 0.0


def test_collate_pads_right_with_masked_labels(tokenizer):
    short = tokenize_example(tokenizer, example(2, messages=CONVERSATION[:3]), max_length=4096, beta=1.0)
    long = tokenize_example(tokenizer, example(4), max_length=4096, beta=1.0)
    batch = collate([short, long], pad_id=5)
    size = len(short.input_ids)
    assert batch["input_ids"].shape == (2, len(long.input_ids))
    assert batch["attention_mask"][0, :size].all() and not batch["attention_mask"][0, size:].any()
    assert (batch["labels"][0, size:] == IGNORE_INDEX).all()


def test_truncation_cuts_the_oldest_context_never_the_target(tokenizer):
    whole = tokenize_example(tokenizer, example(4), max_length=4096, beta=1.0)
    target = sum(label != IGNORE_INDEX for label in whole.labels)
    cut = tokenize_example(tokenizer, example(4), max_length=target + 20, beta=1.0)
    assert len(cut.input_ids) == target + 20
    assert cut.input_ids == whole.input_ids[-(target + 20):]
    assert target_runs(tokenizer, cut) == ["def f(): right<|im_end|>"]
    # A target is never cut in the middle: one that cannot fit leaves the example out.
    assert tokenize_example(tokenizer, example(4), max_length=target - 1, beta=1.0) is None


def test_targets_that_do_not_fit_drop_the_latest_whole_turns(tokenizer):
    # Both answers are targets (a correction and its continuation); only the first fits.
    whole = tokenize_example(tokenizer, example(2), max_length=4096, beta=1.0)
    assert target_runs(tokenizer, whole) == ["def f(): wrong<|im_end|>", "def f(): right<|im_end|>"]
    first = len(tokenizer("def f(): wrong<|im_end|>", add_special_tokens=False)["input_ids"])
    kept = tokenize_example(tokenizer, example(2), max_length=first + 20, beta=1.0)
    assert target_runs(tokenizer, kept) == ["def f(): wrong<|im_end|>"]
    assert len(kept.input_ids) <= first + 20
    assert kept.labels[-1] != IGNORE_INDEX  # it ends where the kept answer ends
    text = tokenizer.decode(kept.input_ids)
    assert text in tokenizer.decode(whole.input_ids)  # one piece of the conversation
    assert text.endswith("def f(): wrong<|im_end|>") and "right" not in text


def test_an_example_with_no_answer_after_target_start_is_left_out(tokenizer):
    assert tokenize_example(tokenizer, example(5), max_length=4096, beta=1.0) is None


def test_read_examples_names_the_bad_line(tmp_path):
    path = tmp_path / "data.jsonl"
    good = {"messages": CONVERSATION, "kind": "correction", "target_start": 4, "task": "t", "correction_id": 1}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "target_start": 9}) + "\n")
    with pytest.raises(LeafeError, match="line 3: `target_start`"):
        read_examples(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(LeafeError, match="line 2: not JSON"):
        read_examples(path)
    path.write_text(json.dumps({**good, "messages": [{"role": "robot", "content": "x"}]}) + "\n")
    with pytest.raises(LeafeError, match="line 1: message 0 needs a role"):
        read_examples(path)
    path.write_text(json.dumps(good) + "\n")
    assert read_examples(path)[0]["target_start"] == 4
    with pytest.raises(LeafeError, match="not found"):
        read_examples(tmp_path / "missing.jsonl")


def test_missing_target_start_means_the_last_answer():
    row = check_example({"messages": CONVERSATION}, "test")
    assert row["target_start"] == 4 and row["kind"] == "correction"


def test_length_grouped_batches_cover_everything_once_and_reshuffle():
    lengths = [5, 50, 7, 48, 6, 51, 9, 47, 30, 31]
    sampler = LengthGroupedBatches(lengths, batch_size=2, seed=3)
    first = sampler.batches(0)
    assert sorted(i for batch in first for i in batch) == list(range(len(lengths)))
    assert len(first) == len(sampler) == 5
    assert first == LengthGroupedBatches(lengths, batch_size=2, seed=3).batches(0)
    assert any(sampler.batches(epoch) != first for epoch in range(1, 5))
    # Sorting inside the group keeps each batch's lengths close together.
    padding = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first)
    assert padding <= 10


def tiny_llama(tokenizer):
    """A randomly initialised one-layer Llama over the test tokenizer, in eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
    ))
    return model.eval()


def test_weighted_loss_scales_rehearsal_by_beta(tokenizer):
    import torch

    from workbench.distill.training import weighted_target_loss

    model = tiny_llama(tokenizer)
    correction = tokenize_example(tokenizer, example(4), max_length=4096, beta=0.5)
    rehearsal = tokenize_example(tokenizer, example(4, "rehearsal"), max_length=4096, beta=0.5)
    with torch.no_grad():
        full = weighted_target_loss(model, collate([correction], tokenizer.pad_token_id))
        half = weighted_target_loss(model, collate([rehearsal], tokenizer.pad_token_id))
        # The same numbers as the model's own (unweighted) causal LM loss on the targets.
        batch = collate([correction], tokenizer.pad_token_id)
        reference = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
    assert float(half) == pytest.approx(0.5 * float(full), rel=1e-5)
    assert float(full) == pytest.approx(float(reference), rel=1e-4)


def test_weighted_loss_on_a_padded_batch_matches_the_models_own_loss(tokenizer):
    """Rows whose targets sit at different positions (a long and a short example padded
    together) get the same loss as the model's full-logits causal LM loss."""
    import torch

    from workbench.distill.training import weighted_target_loss

    model = tiny_llama(tokenizer)
    long = tokenize_example(tokenizer, example(2), max_length=4096, beta=0.5)
    short = tokenize_example(tokenizer, example(2, messages=CONVERSATION[:3]), max_length=4096, beta=0.5)
    assert len(long.input_ids) != len(short.input_ids)
    batch = collate([long, short], tokenizer.pad_token_id)
    with torch.no_grad():
        ours = weighted_target_loss(model, batch)
        reference = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        ).loss
    assert float(ours) == pytest.approx(float(reference), rel=1e-4)
