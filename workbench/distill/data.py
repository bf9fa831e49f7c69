"""Training data for distillation: read the chat-format JSONL, tokenize with loss masks,
and group examples into length-sorted batches.

The format (written by the export stage and the baselines): one JSON object per line,
`{"messages": [...], "kind": ..., "target_start": i, "task": ..., "correction_id": ...}`.
Every assistant message at index >= `target_start` is a training target; all other tokens
(system, user turns, earlier assistant turns, the chat template's own markup) are context
whose labels are -100. Rehearsal examples weigh `beta`, every other kind 1.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import LeafeError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")
KINDS = (
    "correction",
    "rehearsal",
    "rft",
    "early_experience_world",
    "early_experience_reflection",
    "expert",
    "grpo_prompt",
)
MEGABATCH = 16  # batches drawn together, then sorted by length: little padding, still shuffled


@dataclass
class TokenizedExample:
    """One example ready for the model: ids, labels (-100 on context) and its loss weight."""

    input_ids: list[int]
    labels: list[int]
    weight: float
    kind: str
    task: str

    @property
    def target_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def read_examples(path: str | Path) -> list[dict[str, Any]]:
    """The examples of a dataset file, checked line by line (the error names the file, the
    line and what is wrong: not UTF-8, not JSON, a missing field, turns out of order)."""
    path = Path(path)
    if not path.is_file():
        raise LeafeError(f"dataset {path} not found")
    examples = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"dataset {path}, line {number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise LeafeError(
                    f"{where}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})"
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise LeafeError(f"{where}: not JSON ({error})") from None
            examples.append(check_example(row, where))
    return examples


def check_example(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise LeafeError(f"{where}: an example must be a JSON object")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise LeafeError(f"{where}: `messages` must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise LeafeError(f"{where}: message {index} needs a role of {', '.join(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise LeafeError(f"{where}: message {index} needs text `content`")
    check_turn_order(messages, where)
    target_start = row.get("target_start")
    if target_start is None:
        # Without a marker, train on the last answer (the usual SFT shape).
        assistants = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        target_start = assistants[-1] if assistants else len(messages)
    if isinstance(target_start, bool) or not isinstance(target_start, int) or not 0 <= target_start <= len(messages):
        raise LeafeError(f"{where}: `target_start` must be an index into messages, got {target_start!r}")
    kind = row.get("kind", "correction")
    if not isinstance(kind, str):
        raise LeafeError(f"{where}: `kind` must be a string")
    return {**row, "target_start": target_start, "kind": kind, "task": str(row.get("task", ""))}


def check_turn_order(messages: list[dict[str, Any]], where: str) -> None:
    """A system message only first, then user and assistant turns taking turns, the user
    first: the shape chat templates render (some raise on anything else, mid-training)."""
    start = 1 if messages[0]["role"] == "system" else 0
    for index, message in enumerate(messages[start:], start=start):
        expected = "user" if (index - start) % 2 == 0 else "assistant"
        if message["role"] != expected:
            before = f"after {messages[index - 1]['role']!r}" if index else "first"
            raise LeafeError(
                f"{where}: turns out of order: message {index} is {message['role']!r} {before}, "
                f"expected {expected!r} (an optional system message first, then user and assistant in turn)"
            )


def example_weight(kind: str, beta: float) -> float:
    """Rehearsal keeps what the model already did right, at a lower weight than corrections."""
    return beta if kind == "rehearsal" else 1.0


def render(tokenizer: Any, messages: list[dict], *, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )


def target_spans(tokenizer: Any, messages: list[dict], target_start: int) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its target answers.

    A span runs from where the assistant's text starts (just after the template's
    generation prompt) through the template's end-of-turn marker, so the model learns to
    stop; the whitespace the template puts between turns is not a target.
    """
    text = render(tokenizer, messages)
    spans = []
    for index in range(target_start, len(messages)):
        if messages[index]["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:index], generation_prompt=True) if index else ""
        through = render(tokenizer, messages[: index + 1]).rstrip()
        if not (text.startswith(before) and text.startswith(through)) or len(through) < len(before):
            raise LeafeError(
                "distill: the model's chat template does not render conversations as a prefix of "
                "their continuations, so answer tokens cannot be located"
            )
        spans.append((len(before), len(through)))
    return text, spans


def tokenize_example(
    tokenizer: Any, example: dict[str, Any], *, max_length: int, beta: float
) -> TokenizedExample | None:
    """Ids and labels for one example; None when its first target cannot fit in `max_length`.

    Over-long examples lose context from the left (the oldest turns) first, up to the first
    target; if the targets still do not fit, the latest target turns are dropped whole from
    the right (a long correction keeps its corrected action and as much of its continuation
    as fits). A target is never cut in the middle, so the model always learns to stop.
    """
    messages = example["messages"]
    text, spans = target_spans(tokenizer, messages, example["target_start"])
    if not spans:
        return None
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    labels = []
    span_index = 0
    for token, (start, end) in zip(ids, encoded["offset_mapping"], strict=True):
        while span_index < len(spans) and spans[span_index][1] <= start:
            span_index += 1
        inside = span_index < len(spans) and start < spans[span_index][1] and end > spans[span_index][0]
        labels.append(token if inside else IGNORE_INDEX)
    if all(label == IGNORE_INDEX for label in labels):
        return None
    if len(ids) > max_length:
        first_target = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
        cut = min(len(ids) - max_length, first_target)
        ids, labels = ids[cut:], labels[cut:]
        if len(ids) > max_length:
            ends = [end for end in target_run_ends(labels) if end <= max_length]
            if not ends:
                return None
            ids, labels = ids[: ends[-1]], labels[: ends[-1]]
    return TokenizedExample(
        input_ids=ids,
        labels=labels,
        weight=example_weight(example["kind"], beta),
        kind=example["kind"],
        task=example["task"],
    )


def target_run_ends(labels: list[int]) -> list[int]:
    """The index just past each run of target tokens (one run per target answer)."""
    return [
        index + 1
        for index, label in enumerate(labels)
        if label != IGNORE_INDEX and (index + 1 == len(labels) or labels[index + 1] == IGNORE_INDEX)
    ]


def tokenize_examples(
    tokenizer: Any, examples: Sequence[dict[str, Any]], *, max_length: int, beta: float
) -> tuple[list[TokenizedExample], int]:
    """Tokenized examples and how many were left out (a first target longer than max_length)."""
    kept, skipped = [], 0
    for example in examples:
        tokenized = tokenize_example(tokenizer, example, max_length=max_length, beta=beta)
        if tokenized is None:
            skipped += 1
        else:
            kept.append(tokenized)
    return kept, skipped


class LengthGroupedBatches:
    """Index batches of similar length, reshuffled on every pass (a DataLoader batch_sampler).

    Each pass shuffles the examples, takes them `MEGABATCH` batches at a time, sorts each
    group by length and cuts it into batches, then shuffles the batch order. Padding
    stays small (CPU time is spent on real tokens) and the order still varies by epoch.
    Every process builds the same sampler from the same seed, so a sharded run agrees
    on the batches.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, *, grouped: bool = True) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.grouped = grouped  # off: plain shuffled batches (`distill.group_by_length = false`)
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        if not self.grouped:
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        group = self.batch_size * MEGABATCH
        result = []
        for start in range(0, len(order), group):
            chunk = sorted(order[start : start + group], key=lambda i: self.lengths[i], reverse=True)
            result.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        rng.shuffle(result)
        return result

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.epoch)
        self.epoch += 1
        yield from batches


def micro_batches(batch: dict[str, Any], max_tokens: int) -> list[dict[str, Any]]:
    """A right-padded batch as parts of at most `max_tokens` padded tokens each (a row longer
    than that is a part of its own; 0: the batch itself). Rows go longest first, and each
    part is cut to its longest row, so a part also carries less padding than the batch."""
    if max_tokens <= 0:
        return [batch]
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    order = sorted(range(len(lengths)), key=lambda row: -lengths[row])
    parts: list[list[int]] = []
    for row in order:
        # Sorted longest first, so a part's width is the length of its first row.
        if parts and (len(parts[-1]) + 1) * lengths[parts[-1][0]] <= max_tokens:
            parts[-1].append(row)
        else:
            parts.append([row])
    if len(parts) == 1:
        return [batch]
    return [
        {key: value[rows, : lengths[rows[0]]] for key, value in batch.items()}
        for rows in parts
    ]


def collate(examples: Sequence[TokenizedExample], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels and per-token loss weights."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    weights = torch.zeros((len(examples), width), dtype=torch.float32)
    for row, example in enumerate(examples):
        size = len(example.input_ids)
        input_ids[row, :size] = torch.tensor(example.input_ids)
        labels[row, :size] = torch.tensor(example.labels)
        attention[row, :size] = 1
        weights[row, :size] = example.weight
    weights[labels == IGNORE_INDEX] = 0.0
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "weights": weights}


def write_examples(path: str | Path, examples: Sequence[dict[str, Any]]) -> int:
    """Write a dataset file atomically (a crash leaves the old file or the new one)."""
    from workbench.files import atomic_write_jsonl

    return atomic_write_jsonl(path, examples)


def make_example(
    messages: list[dict[str, str]],
    *,
    kind: str,
    target_start: int,
    task: str,
    correction_id: int | None = None,
) -> dict[str, Any]:
    """One example in the dataset format."""
    return {
        "messages": messages,
        "kind": kind,
        "target_start": target_start,
        "task": task,
        "correction_id": correction_id,
    }
