"""Paired comparisons of policies: the mean per-task difference of Pass@k, with a paired
bootstrap 95% interval over tasks.

Every policy plays the same tasks with the same seeds, so the honest comparison is per
task: how much better (or worse) is a policy than its reference *on each task*, averaged.
Task difficulty varies far more than the policies do, and comparing two unpaired intervals
counts that variation twice; a paired interval removes it. The interval resamples task
indices with replacement and applies the same indices to both policies, which is the same
as resampling the per-task differences, so `passk.bootstrap_interval` does the work with
the seed each Pass@k row uses: where both policies played the same tasks, a pair's
resamples are the very ones behind the two policies' own intervals.

Pure computation: no store, no model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.errors import LeafeError
from workbench.passk import bootstrap_interval, per_task_pass_at_k

Counts = tuple[int, int]
"""(n rollouts, c successes) of one policy on one task."""


@dataclass(frozen=True)
class PairedDifference:
    """`policy` minus `reference` in Pass@k, averaged over the tasks both played."""

    policy: str
    reference: str
    k: int
    diff: float
    """Mean over tasks of (policy's Pass@k - reference's Pass@k); above 0: the policy is better."""
    ci_low: float
    ci_high: float
    n_tasks: int
    """How many tasks both policies played (the sample the interval resamples)."""
    overlap_tasks: int = 0
    """Of those, tasks either policy was trained on: not a held-out measure there."""


def paired_difference(
    policy: Sequence[Counts], reference: Sequence[Counts], k: int, *, resamples: int, seed: int
) -> tuple[float, float, float]:
    """(mean difference, 95% low, high) of Pass@k, task i of `policy` paired with task i of
    `reference`."""
    if len(policy) != len(reference):
        raise LeafeError(
            f"paired Pass@k needs the same tasks on both sides, got {len(policy)} and {len(reference)}"
        )
    differences = per_task_pass_at_k(policy, k) - per_task_pass_at_k(reference, k)
    low, high = bootstrap_interval(differences, resamples=resamples, seed=seed)
    return float(np.mean(differences)), low, high


def comparison_pairs(policies: Sequence[str], references: Sequence[str]) -> list[tuple[str, str]]:
    """(policy, reference) for every policy against every reference it is not.

    A pair whose mirror is already listed is left out: `base` against the LEAFE adapter is
    the LEAFE adapter against `base` with the sign turned."""
    pairs: list[tuple[str, str]] = []
    for reference in references:
        if reference not in policies:
            continue
        for policy in policies:
            if policy != reference and (reference, policy) not in pairs and (policy, reference) not in pairs:
                pairs.append((policy, reference))
    return pairs


def compare_policies(
    results: Mapping[str, Mapping[int, Counts]],
    references: Sequence[str],
    ks: Sequence[int],
    *,
    resamples: int,
    seed: int,
    trained_on: Mapping[str, set[int]] | None = None,
) -> list[PairedDifference]:
    """Every policy of `results` (policy -> task id -> (n, c)) against each reference in turn,
    for each k, over the tasks both played. The interval of k uses seed `seed + k`, as the
    policies' own Pass@k intervals do. `trained_on` (policy -> tasks) counts the paired
    tasks that are not held out for either side."""
    trained_on = trained_on or {}
    differences = []
    for policy, reference in comparison_pairs(list(results), references):
        # In task order, as each policy's own Pass@k row resamples them.
        tasks = sorted(task for task in results[policy] if task in results[reference])
        if not tasks:
            continue
        overlap = sum(
            1 for task in tasks if task in trained_on.get(policy, set()) or task in trained_on.get(reference, set())
        )
        for k in ks:
            diff, low, high = paired_difference(
                [results[policy][task] for task in tasks],
                [results[reference][task] for task in tasks],
                k, resamples=resamples, seed=seed + k,
            )
            differences.append(PairedDifference(policy, reference, k, diff, low, high, len(tasks), overlap))
    return differences
