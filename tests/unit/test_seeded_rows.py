"""Evaluation samples each row from its own seed (workbench/models/seeded_rows.py): the
token a row draws is defined by its probabilities and its seed alone (tokens in order of
probability, ties by token id, cut to the top_p nucleus), not by the rows beside it or by
how far the sampler had to look for the nucleus."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.models.seeded_rows import RowSeededSampler

VOCABULARY = 3000


def logits(rows: int, scale: float, seed: int) -> torch.Tensor:
    """Logits rounded through bfloat16, as the embedded model gives them: many exact ties."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, VOCABULARY, generator=generator) * scale).to(torch.bfloat16).float()


def drawn(sampler: RowSeededSampler, scores: torch.Tensor) -> list[int]:
    chosen = sampler(None, scores)
    assert bool((torch.isfinite(chosen).sum(-1) == 1).all()), "exactly one token left standing per row"
    return chosen.argmax(-1).tolist()


def reference_draw(row: torch.Tensor, seed: int, temperature: float, top_p: float) -> int:
    """The definition, over the whole vocabulary in numpy: most likely first, ties by lower
    token id; keep tokens while the mass before them is under top_p; one uniform draw from
    the row's own torch stream picks along the kept mass."""
    probabilities = torch.softmax(row / temperature, dim=-1).double().numpy()
    order = np.lexsort((np.arange(len(probabilities)), -probabilities))
    ordered = probabilities[order]
    kept = ordered * ((np.cumsum(ordered) - ordered) < top_p)
    cumulative = np.cumsum(kept)
    draw = float(torch.rand((), generator=torch.Generator().manual_seed(seed)))
    index = min(int(np.searchsorted(cumulative, draw * cumulative[-1], side="right")), len(order) - 1)
    return int(order[index])


@pytest.mark.parametrize("scale", [8.0, 2.0, 0.05])  # peaked, spread, nearly flat (a wide nucleus)
@pytest.mark.parametrize("top_p", [0.95, 1.0])
def test_each_row_draws_the_token_its_seed_and_probabilities_define(scale, top_p):
    scores = logits(24, scale, seed=int(scale * 10))
    seeds = list(range(100, 124))
    tokens = drawn(RowSeededSampler(seeds, 0.7, top_p), scores)
    assert tokens == [reference_draw(scores[i], seeds[i], 0.7, top_p) for i in range(24)]


def test_equal_probabilities_are_taken_in_token_order():
    # Two tokens share all the mass: a draw in the first half picks the lower id.
    scores = torch.full((1, VOCABULARY), -1e4)
    scores[0, [2500, 7]] = 5.0
    picks = set()
    for seed in range(40):
        token = drawn(RowSeededSampler([seed], 1.0, 0.95), scores)[0]
        draw = float(torch.rand((), generator=torch.Generator().manual_seed(seed)))
        assert token == (7 if draw < 0.5 else 2500)
        picks.add(token)
    assert picks == {7, 2500}


def test_a_row_draws_the_same_alone_as_beside_a_row_with_a_flat_distribution():
    peaked = logits(6, 8.0, seed=3)
    flat = logits(1, 0.01, seed=4)  # its nucleus spans most of the vocabulary
    seeds = [11, 12, 13, 14, 15, 16]
    alone = drawn(RowSeededSampler(seeds, 0.7, 0.95), peaked)
    together = drawn(RowSeededSampler([99, *seeds], 0.7, 0.95), torch.cat([flat, peaked]))
    assert together[1:] == alone
