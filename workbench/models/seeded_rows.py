"""Per-row seeded sampling and shared prompts for the `hf` backend.

Evaluation gives every episode a seed of its own (`Sampling.row_seeds`), so an episode's
answers do not depend on which other rows share its batch: batching policies together or
one after another gives the same samples. transformers' sampler draws from one global
random stream for the whole batch, so the draw is done here instead, one
`torch.Generator` per row, by a logits processor that leaves only the drawn token
standing for generate()'s greedy step to pick.

Rows whose prompts are identical (every rollout of a task starts from the same
observation, and later steps often meet again in the same state) are encoded once: a
chunk holds distinct prompts, and their KV caches are copied to the rows that share them.
"""

from __future__ import annotations

from dataclasses import dataclass

SEED_MASK = (1 << 63) - 1


@dataclass
class Chunk:
    """Distinct prompts decoded together, and for each row the prompt it samples from."""

    prompts: list[list[int]]
    rows: list[int]  # indices into the caller's rows, in decoding order
    source: list[int]  # for each row, its prompt's index in `prompts`


def plan_chunks(encoded: list[list[int]], batch_size: int) -> list[Chunk]:
    """Group rows by identical prompt and pack the groups, shortest prompts first (little
    padding), into chunks of at most `batch_size` rows."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for row, ids in enumerate(encoded):
        groups.setdefault(tuple(ids), []).append(row)
    pieces = []
    for ids, rows in sorted(groups.items(), key=lambda item: (len(item[0]), item[1][0])):
        for start in range(0, len(rows), batch_size):
            pieces.append((list(ids), rows[start : start + batch_size]))
    chunks: list[Chunk] = []
    current = Chunk([], [], [])
    for ids, rows in pieces:
        if current.rows and len(current.rows) + len(rows) > batch_size:
            chunks.append(current)
            current = Chunk([], [], [])
        current.source.extend([len(current.prompts)] * len(rows))
        current.prompts.append(ids)
        current.rows.extend(rows)
    if current.rows:
        chunks.append(current)
    return chunks


def sample_seed(row_seed: int, sample: int) -> int:
    """The seed of the `sample`-th of n samples of a seeded row."""
    return (row_seed * 1_000_003 + sample) & SEED_MASK if sample else row_seed & SEED_MASK


NUCLEUS_FIRST_GUESS = 64  # tokens; a navigation or coding answer's nucleus is usually far smaller


def nucleus(probabilities, top_p: float):
    """The tokens of each row in order of probability, most likely first, ties by token id,
    cut to the ones that can fall in the `top_p` nucleus: (probabilities, token ids).

    Sorting the whole vocabulary (49,152 tokens for the embedded model) cost 37 ms per
    decoding step of 16 rows on one CPU thread, more than the model's own step. The nucleus
    lives among the few most likely tokens, so `topk` is taken and widened until every row's
    nucleus fits: a row fits when the tokens strictly more likely than the last one taken
    already hold `top_p` of the mass, so no token left out, nor one tied with the last
    taken, can be kept. The order is a definition (probability, then token id), not
    whatever order a sort gives equal probabilities, so a row draws the same token whatever
    rows share its batch and however far the search had to widen.
    """
    vocabulary = probabilities.shape[-1]
    width = vocabulary if top_p >= 1.0 else min(vocabulary, NUCLEUS_FIRST_GUESS)
    while True:
        values, tokens = probabilities.topk(width, dim=-1)
        if width == vocabulary:
            break
        surely_in = (values * (values > values[:, -1:])).sum(-1)
        if bool((surely_in >= top_p).all()):
            break
        width = min(vocabulary, width * 8)
    # Equal probabilities by token id: order by id, then a stable sort by probability.
    tokens, by_id = tokens.sort(dim=-1)
    values = values.gather(-1, by_id)
    values, by_probability = values.sort(dim=-1, descending=True, stable=True)
    return values, tokens.gather(-1, by_probability)


class RowSeededSampler:
    """A logits processor that samples each row from its own seeded stream (temperature,
    then nucleus `top_p`) and returns logits where only the drawn token is finite."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float) -> None:
        import torch

        self.generators = [torch.Generator().manual_seed(seed & SEED_MASK) for seed in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids, scores):
        import torch

        probabilities = torch.softmax(scores.float() / self.temperature, dim=-1)
        ordered, order = nucleus(probabilities, self.top_p)
        # Running sums in double precision, which the CPU adds up in order: a row's sums do
        # not depend on how many tokens the nucleus search took for the whole batch.
        ordered = ordered.double()
        if self.top_p < 1.0:
            # Keep the most likely tokens until their mass reaches top_p (the first always).
            ordered = ordered * ((ordered.cumsum(-1) - ordered) < self.top_p)
        cumulative = ordered.cumsum(-1)
        # One uniform draw per row from the row's own stream: the same whatever the batch.
        draws = torch.stack([torch.rand((), generator=g) for g in self.generators]).to(cumulative.device)
        targets = (draws.double() * cumulative[:, -1]).unsqueeze(-1)
        picked = torch.searchsorted(cumulative, targets, right=True).clamp(max=cumulative.shape[-1] - 1)
        tokens = order.gather(-1, picked)
        chosen = torch.full_like(scores, float("-inf"))
        chosen.scatter_(-1, tokens, 0.0)
        return chosen
