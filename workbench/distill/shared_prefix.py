"""Training on a shared prompt once (`distill.share_prefixes`).

Many training examples repeat the same prompt: Early Experience makes five or six from each
expert state (world modelling for every action tried, the reflection, the expert action),
rft several from each task. Trained as separate rows, every copy of the prompt goes through
the model again, although its hidden states are the same in every copy (attention is
causal, so a token never sees what follows it).

Here such examples are trained as one packed row: the shared prefix once, then each
example's own remainder (its suffix), with an attention mask that lets every suffix see the
prefix and itself but not the other suffixes, and position ids that restart each suffix
where the prefix ends. Every target token then gets the same logits as in its own row, so
the loss and its gradients are those of the unpacked batch (tests/unit/test_shared_prefix.py
checks it); only the repeated prefix computation is gone.

Two parts:
- `PrefixGroupedBatches`, a batch sampler that puts examples sharing a prompt in the same
  batch (clusters of examples, shuffled each epoch; each batch still holds `batch_size`
  examples, so the number of optimiser steps is unchanged);
- `collate_shared`, which packs the examples of one batch: those sharing a prompt into one
  group each, then the groups end to end into rows of about `ROW_TOKENS` tokens, so a batch
  carries almost no padding (sequence packing). Besides `collate`'s tensors it gives
  `position_ids`, `groups` (which group a token belongs to, -1: padding) and `segments`
  (0: the group's shared prefix, 1.. : one per example); `attention_mask_4d` turns them
  into the mask the model reads.

Sharing a prefix is worth it only when most of a prompt is shared, so examples that share
only the system prompt stay groups of their own. Rows stay short because attention runs
over every pair of a row's tokens, the masked ones included.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.distill.data import IGNORE_INDEX, MEGABATCH, LengthGroupedBatches, TokenizedExample

SHARED_FRACTION = 0.5  # of a row's context (tokens before its first target) that must be shared
MIN_SHARED_TOKENS = 16
ROW_TOKENS = 512  # groups are laid end to end in rows of this many tokens (a longer group: a row of its own)


def context_length(example: TokenizedExample) -> int:
    """Tokens before the example's first target token."""
    return next((i for i, label in enumerate(example.labels) if label != IGNORE_INDEX), len(example.labels))


def common_prefix(first: Sequence[int], second: Sequence[int]) -> int:
    size = 0
    for a, b in zip(first, second, strict=False):  # prompts of different lengths
        if a != b:
            break
        size += 1
    return size


def shareable(shared: int, example: TokenizedExample) -> int:
    """How much of `shared` tokens of prefix this example can share: less than its context
    (the token at the split is predicted from the prefix's last position, which a packed row
    can do for one suffix only, so it must not be a target) and worth it (most of the context)."""
    context = context_length(example)
    size = min(shared, context - 1)
    return size if size >= max(MIN_SHARED_TOKENS, SHARED_FRACTION * context) else 0


def prefix_clusters(examples: Sequence[TokenizedExample]) -> list[list[int]]:
    """Indices of the examples in groups that share most of their prompt (sorted by prompt,
    a group grows while the next prompt shares enough with the group's first)."""
    order = sorted(range(len(examples)), key=lambda i: examples[i].input_ids[: context_length(examples[i])])
    clusters: list[list[int]] = []
    for index in order:
        if clusters:
            head = examples[clusters[-1][0]]
            shared = common_prefix(head.input_ids, examples[index].input_ids)
            if shareable(shared, head) and shareable(shared, examples[index]):
                clusters[-1].append(index)
                continue
        clusters.append([index])
    return clusters


class PrefixGroupedBatches(LengthGroupedBatches):
    """Index batches in which examples sharing a prompt sit together (a DataLoader
    batch_sampler, as its parent: one pass per epoch, the same number of batches).

    Each pass shuffles the clusters and the examples inside each; then, `MEGABATCH` batches'
    worth of clusters at a time, sorts the clusters by the mean length of their examples
    (so that a dataset where no prompt repeats is batched by length as `LengthGroupedBatches`
    does it), lays everything end to end, cuts `batch_size` at a time and shuffles the
    batches: the same number of batches as plain shuffling, every example once per pass,
    and the order varies by epoch. Every process builds the same sampler from the same seed.
    """

    def __init__(self, clusters: list[list[int]], lengths: Sequence[int], batch_size: int, seed: int,
                 *, grouped: bool = True) -> None:
        super().__init__(lengths, batch_size, seed, grouped=grouped)  # grouped off: clusters in shuffled order
        self.clusters = clusters

    def mean_length(self, cluster: list[int]) -> float:
        return sum(self.lengths[i] for i in cluster) / len(cluster)

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        clusters = [list(cluster) for cluster in self.clusters]
        rng.shuffle(clusters)
        for cluster in clusters:
            rng.shuffle(cluster)
        if self.grouped:
            chunks, chunk, size = [], [], 0
            for cluster in clusters:
                chunk.append(cluster)
                size += len(cluster)
                if size >= self.batch_size * MEGABATCH:
                    chunks.append(chunk)
                    chunk, size = [], 0
            chunks.append(chunk)
            clusters = [c for chunk in chunks for c in sorted(chunk, key=self.mean_length, reverse=True)]
        order = [i for cluster in clusters for i in cluster]
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.grouped:
            rng.shuffle(batches)
        return batches


@dataclass
class PackedRow:
    """Token lists of one row of a batch: one group (a shared prefix and the suffixes of the
    examples packed on it; a single example is a group with no prefix and one suffix), or
    several groups end to end (`groups` tells them apart)."""

    input_ids: list[int]
    labels: list[int]
    weights: list[float]
    positions: list[int]
    segments: list[int]
    groups: list[int] = field(default_factory=list)

    def extend(self, other: PackedRow, group: int) -> None:
        self.input_ids += other.input_ids
        self.labels += other.labels
        self.weights += other.weights
        self.positions += other.positions
        self.segments += other.segments
        self.groups += [group] * len(other.input_ids)


def pack(examples: Sequence[TokenizedExample], shared: int) -> PackedRow:
    """`examples` (which agree on their first `shared` tokens) as one row."""
    first = examples[0]
    row = PackedRow(
        input_ids=list(first.input_ids[:shared]),
        labels=[IGNORE_INDEX] * shared,
        weights=[0.0] * shared,
        positions=list(range(shared)),
        segments=[0] * shared,
    )
    for number, example in enumerate(examples, start=1):
        size = len(example.input_ids)
        row.input_ids.extend(example.input_ids[shared:])
        row.labels.extend(example.labels[shared:])
        row.weights.extend([example.weight] * (size - shared))
        row.positions.extend(range(shared, size))
        row.segments.extend([number] * (size - shared))
    return row


def packed_groups(examples: Sequence[TokenizedExample]) -> list[PackedRow]:
    """The batch's examples as groups, those that share most of their prompt packed together."""
    order = sorted(examples, key=lambda e: e.input_ids[: context_length(e)])
    rows: list[PackedRow] = []
    start = 0
    while start < len(order):
        group, shared = [order[start]], len(order[start].input_ids)
        for example in order[start + 1 :]:
            # Sorted by prompt, so what the group's first shares with a later row only falls.
            together = min(shared, common_prefix(group[0].input_ids, example.input_ids))
            size = min(shareable(together, member) for member in [*group, example])
            if not size:
                break
            group.append(example)
            shared = size
        rows.append(pack(group, shared if len(group) > 1 else 0))
        start += len(group)
    return rows


def packed_rows(examples: Sequence[TokenizedExample], row_tokens: int = ROW_TOKENS) -> list[PackedRow]:
    """The batch's groups laid end to end in rows, longest group first, each into the first
    row with room for it (rows of `row_tokens`, or of the longest group when it is longer)."""
    groups = sorted(packed_groups(examples), key=lambda g: -len(g.input_ids))
    width = max(row_tokens, len(groups[0].input_ids))
    rows: list[PackedRow] = []
    for number, group in enumerate(groups):
        row = next((r for r in rows if len(r.input_ids) + len(group.input_ids) <= width), None)
        if row is None:
            row = PackedRow([], [], [], [], [])
            rows.append(row)
        row.extend(group, number)
    return rows


def collate_shared(examples: Sequence[TokenizedExample], pad_id: int, row_tokens: int = ROW_TOKENS) -> dict[str, Any]:
    """Right-padded tensors of the packed batch: what `collate` gives, plus `position_ids`,
    `groups` and `segments`. `attention_mask` marks the tokens the model runs (for counting
    and splitting into parts); the attention itself follows groups and segments."""
    import torch

    rows = packed_rows(examples, row_tokens)
    width = max(len(row.input_ids) for row in rows)
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    weights = torch.zeros(shape, dtype=torch.float32)
    positions = torch.zeros(shape, dtype=torch.long)
    segments = torch.full(shape, -1, dtype=torch.long)
    groups = torch.full(shape, -1, dtype=torch.long)
    for index, row in enumerate(rows):
        size = len(row.input_ids)
        input_ids[index, :size] = torch.tensor(row.input_ids)
        labels[index, :size] = torch.tensor(row.labels)
        attention[index, :size] = 1
        weights[index, :size] = torch.tensor(row.weights)
        positions[index, :size] = torch.tensor(row.positions)
        segments[index, :size] = torch.tensor(row.segments)
        groups[index, :size] = torch.tensor(row.groups)
    weights[labels == IGNORE_INDEX] = 0.0
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "weights": weights,
            "position_ids": positions, "groups": groups, "segments": segments}


def attention_mask_4d(groups: Any, segments: Any) -> Any:
    """The boolean (batch, 1, query, key) mask of packed rows: a token sees the earlier tokens
    of its own group's shared prefix and of its own segment. A padding token sees itself only
    (a query that sees nothing would turn its softmax into NaN)."""
    import torch

    width = segments.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=segments.device).tril()
    same_group = (groups[:, :, None] == groups[:, None, :]) & (groups[:, None, :] >= 0)
    query, key = segments[:, :, None], segments[:, None, :]
    allowed = causal & same_group & ((key == query) | (key == 0))
    allowed |= torch.eye(width, dtype=torch.bool, device=segments.device)
    return allowed[:, None]
