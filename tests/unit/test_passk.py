"""The Pass@k estimator against exact binomial arithmetic, and its bootstrap interval."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import LeafeError
from workbench.passk import bootstrap_interval, mean_pass_at_k, pass_at_k


def exact(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k) in exact rational arithmetic."""
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


@st.composite
def n_c_k(draw):
    n = draw(st.integers(min_value=1, max_value=300))
    c = draw(st.integers(min_value=0, max_value=n))
    k = draw(st.integers(min_value=1, max_value=min(n, 128)))
    return n, c, k


@settings(max_examples=400, deadline=None)
@given(n_c_k())
def test_estimator_matches_exact_binomials(case):
    n, c, k = case
    assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (10, 0, 1, 0.0),
    (10, 0, 10, 0.0),
    (10, 10, 1, 1.0),
    (16, 16, 16, 1.0),
    (10, 3, 1, 0.3),
    (4, 1, 2, 0.5),
    (5, 2, 4, 1.0),  # n - c = 3 < k = 4: every draw of four holds a success
    (128, 1, 128, 1.0),
])
def test_edge_cases(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_1_is_the_success_rate():
    for n in (1, 7, 64):
        for c in range(n + 1):
            assert pass_at_k(n, c, 1) == pytest.approx(c / n)


def test_large_n_does_not_overflow():
    value = pass_at_k(100_000, 3, 128)
    assert 0.0 < value < 0.01
    assert math.isfinite(value)


def test_k_above_n_is_refused_with_a_clear_message():
    with pytest.raises(LeafeError, match="pass@8 needs at least 8 rollouts"):
        pass_at_k(4, 1, 8)


@pytest.mark.parametrize(("n", "c", "k"), [(0, 0, 1), (4, 5, 1), (4, -1, 1), (4, 1, 0)])
def test_invalid_counts_are_refused(n, c, k):
    with pytest.raises(LeafeError):
        pass_at_k(n, c, k)


def test_bootstrap_interval_contains_the_mean():
    results = [(8, 0), (8, 1), (8, 3), (8, 8), (8, 5), (8, 2)]
    for k in (1, 2, 4, 8):
        mean, low, high = mean_pass_at_k(results, k, resamples=2000, seed=0)
        assert low <= mean <= high
        assert low >= 0.0 and high <= 1.0
        assert low < high  # tasks disagree, so the interval has width


def test_bootstrap_interval_is_degenerate_when_all_tasks_agree():
    mean, low, high = mean_pass_at_k([(8, 3)] * 10, 2, resamples=500, seed=1)
    assert low == mean == high


def test_bootstrap_is_seeded():
    values = [0.0, 0.25, 1.0, 0.5, 0.75]
    assert bootstrap_interval(values, resamples=300, seed=5) == bootstrap_interval(values, resamples=300, seed=5)


def test_single_task_or_no_resamples_collapse_to_the_mean():
    assert bootstrap_interval([0.4], resamples=100, seed=0) == (0.4, 0.4)
    assert bootstrap_interval([0.0, 1.0], resamples=0, seed=0) == (0.5, 0.5)
