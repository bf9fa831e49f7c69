"""Paired Pass@k differences: the mean per-task difference and its paired bootstrap
interval, checked against brute force (every resample of a few tasks enumerated, and a
plain loop that draws the same task indices for both policies)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from workbench.errors import LeafeError
from workbench.paired import compare_policies, comparison_pairs, paired_difference
from workbench.passk import mean_pass_at_k

POLICY = [(8, 6), (8, 1), (8, 8), (8, 3)]
REFERENCE = [(8, 2), (8, 2), (8, 7), (8, 0)]


def exact_pass_at_k(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def exact_quantile(values: list[Fraction], share: float) -> Fraction:
    """The smallest value whose cumulative share reaches `share` (all values equally likely)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@pytest.mark.parametrize("k", [1, 2, 4])
def test_difference_and_interval_match_every_resample_enumerated(k):
    differences = [exact_pass_at_k(*p, k) - exact_pass_at_k(*r, k) for p, r in zip(POLICY, REFERENCE, strict=True)]
    tasks = len(differences)
    # All 4^4 = 256 equally likely resamples of task indices, the same indices on both sides.
    resample_means = [sum(differences[i] for i in picks) / tasks
                      for picks in itertools.product(range(tasks), repeat=tasks)]

    diff, low, high = paired_difference(POLICY, REFERENCE, k, resamples=20_000, seed=11)

    assert diff == pytest.approx(float(sum(differences) / tasks), abs=1e-12)
    # 20,000 seeded draws put the 2.5% and 97.5% points between the exact 2% and 3%
    # (97% and 98%) points of the enumerated distribution.
    # (1e-12: floating point against exact fractions)
    assert float(exact_quantile(resample_means, 0.02)) - 1e-12 <= low <= float(exact_quantile(resample_means, 0.03)) + 1e-12
    assert float(exact_quantile(resample_means, 0.97)) - 1e-12 <= high <= float(exact_quantile(resample_means, 0.98)) + 1e-12
    assert low < diff < high


def test_interval_is_a_plain_loop_drawing_the_same_task_indices_for_both_policies():
    policy = [(16, c) for c in (3, 9, 0, 16, 7, 12, 5)]
    reference = [(16, c) for c in (1, 10, 0, 11, 2, 12, 6)]
    k, resamples, seed = 2, 500, 4
    ours = np.array([exact_pass_at_k(n, c, k) for n, c in policy], dtype=float)
    theirs = np.array([exact_pass_at_k(n, c, k) for n, c in reference], dtype=float)
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(resamples):
        picks = rng.integers(0, len(policy), size=len(policy))
        means.append(ours[picks].mean() - theirs[picks].mean())
    expected_low, expected_high = np.quantile(means, [0.025, 0.975])

    diff, low, high = paired_difference(policy, reference, k, resamples=resamples, seed=seed)

    assert diff == pytest.approx(ours.mean() - theirs.mean(), abs=1e-12)
    assert (low, high) == pytest.approx((expected_low, expected_high), abs=1e-12)


def test_a_gain_on_every_task_clears_zero_though_the_unpaired_intervals_overlap():
    # Tasks of very different difficulty; the policy solves one more rollout in 4 on each.
    reference = [(4, 0), (4, 3), (4, 1), (4, 2), (4, 0), (4, 3)]
    policy = [(4, c + 1) for _, c in reference]
    diff, low, high = paired_difference(policy, reference, 1, resamples=1000, seed=0)
    assert (diff, low, high) == pytest.approx((0.25, 0.25, 0.25))
    _, policy_low, _ = mean_pass_at_k(policy, 1, resamples=1000, seed=0)
    _, _, reference_high = mean_pass_at_k(reference, 1, resamples=1000, seed=0)
    assert policy_low < reference_high  # compared apart, the two would look alike


def test_the_same_seed_gives_the_same_interval_and_another_seed_may_not():
    first = paired_difference(POLICY, REFERENCE, 1, resamples=300, seed=5)
    assert paired_difference(POLICY, REFERENCE, 1, resamples=300, seed=5) == first
    assert paired_difference(POLICY, REFERENCE, 1, resamples=300, seed=6) != first


def test_unequal_task_lists_are_refused():
    with pytest.raises(LeafeError, match="same tasks"):
        paired_difference(POLICY, REFERENCE[:3], 1, resamples=10, seed=0)


def test_each_policy_against_base_and_against_leafe_without_mirrors():
    policies = ["base", "adapter:leafe", "adapter:rft", "adapter:grpo"]
    assert comparison_pairs(policies, ["base", "adapter:leafe"]) == [
        ("adapter:leafe", "base"), ("adapter:rft", "base"), ("adapter:grpo", "base"),
        ("adapter:rft", "adapter:leafe"), ("adapter:grpo", "adapter:leafe"),
    ]
    # No LEAFE adapter evaluated: against base only; base not evaluated: no pairs at all.
    assert comparison_pairs(["base", "adapter:rft"], ["base"]) == [("adapter:rft", "base")]
    assert comparison_pairs(["adapter:rft", "adapter:grpo"], ["base"]) == []


def test_compare_policies_pairs_tasks_by_id_and_counts_trained_tasks():
    results = {
        "base": {10: (4, 1), 11: (4, 0), 12: (4, 4)},
        "adapter:leafe": {12: (4, 4), 10: (4, 3), 11: (4, 2)},  # same tasks, another order
    }
    (pair,) = compare_policies(results, ["base"], [1], resamples=200, seed=0, trained_on={"adapter:leafe": {11}})
    assert (pair.policy, pair.reference, pair.k, pair.n_tasks, pair.overlap_tasks) == ("adapter:leafe", "base", 1, 3, 1)
    assert pair.diff == pytest.approx(((3 - 1) + (2 - 0) + 0) / 4 / 3)
    pairs = compare_policies(results, ["base"], [1, 2, 4], resamples=200, seed=0)
    assert [p.k for p in pairs] == [1, 2, 4] and all(p.overlap_tasks == 0 for p in pairs)
    assert all(p.ci_low <= p.diff <= p.ci_high for p in pairs)
