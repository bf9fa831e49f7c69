"""Pass@k: the unbiased estimator of Chen et al. 2021 and a bootstrap interval over tasks.

For one task with `n` independent rollouts of which `c` succeeded, the probability that
at least one of `k` rollouts drawn without replacement succeeds is
`1 - C(n-c, k) / C(n, k)`. The binomials overflow for n in the hundreds, so we use the
equal product form `1 - prod(1 - k / arange(n-c+1, n+1))`. A benchmark's Pass@k is the
mean over tasks; its 95% interval resamples tasks with replacement (seeded), because the
tasks, not the rollouts, are the sample we want to generalise from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workbench.errors import LeafeError

CONFIDENCE = 0.95


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k for one task: `n` rollouts, `c` successes, `k` draws."""
    if n < 1:
        raise LeafeError(f"pass@k needs at least one rollout, got n = {n}")
    if not 0 <= c <= n:
        raise LeafeError(f"pass@k: successes c = {c} must lie between 0 and n = {n}")
    if k < 1:
        raise LeafeError(f"pass@k: k must be at least 1, got {k}")
    if k > n:
        raise LeafeError(f"pass@{k} needs at least {k} rollouts per task, but only n = {n} were made")
    if n - c < k:
        # Every draw of k rollouts holds at least one success.
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def per_task_pass_at_k(results: Sequence[tuple[int, int]], k: int) -> np.ndarray:
    """Pass@k of each task, from its (n, c)."""
    return np.array([pass_at_k(n, c, k) for n, c in results], dtype=np.float64)


def bootstrap_interval(
    values: Sequence[float] | np.ndarray, *, resamples: int, seed: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one value per task).

    With no resamples, or a single task, the interval collapses to the mean: there is
    nothing to resample that could move it.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise LeafeError("pass@k: no tasks to average over")
    mean = float(values.mean())
    if resamples < 1 or values.size == 1:
        return mean, mean
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    # Quantiles of a finite resample can land a hair beside the mean in floating point;
    # an interval must always contain its own point estimate.
    return min(float(low), mean), max(float(high), mean)


def mean_pass_at_k(
    results: Sequence[tuple[int, int]], k: int, *, resamples: int, seed: int
) -> tuple[float, float, float]:
    """(Pass@k averaged over tasks, 95% interval low, high) from each task's (n, c)."""
    values = per_task_pass_at_k(results, k)
    low, high = bootstrap_interval(values, resamples=resamples, seed=seed)
    return float(values.mean()), low, high
