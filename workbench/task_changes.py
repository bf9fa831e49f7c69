"""Two policies compared task by task: each task's c/n under both, and whether the policy
fixed it (solves it more often than the reference), broke it (less often) or left it
unchanged. The per-task view behind the paired statistics: which tasks moved."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FIXED, BROKEN, UNCHANGED = "fixed", "broken", "unchanged"
SORT_KEYS = ("change", "task", "gain")
"""How the table can be ordered: fixed, then broken, then unchanged; by name; by gain."""


@dataclass(frozen=True)
class TaskChange:
    """One task under the reference and the policy: (n, c) each, None where not evaluated."""

    task: str
    reference: tuple[int, int] | None
    policy: tuple[int, int] | None

    @staticmethod
    def rate(counts: tuple[int, int] | None) -> float | None:
        return counts[1] / counts[0] if counts and counts[0] else None

    @property
    def gain(self) -> float:
        """The policy's success rate minus the reference's (0 where either is missing)."""
        before, after = self.rate(self.reference), self.rate(self.policy)
        return 0.0 if before is None or after is None else after - before

    @property
    def mark(self) -> str:
        if self.gain > 0:
            return FIXED
        if self.gain < 0:
            return BROKEN
        return UNCHANGED


def compare_tasks(
    reference: Mapping[str, tuple[int, int]], policy: Mapping[str, tuple[int, int]]
) -> list[TaskChange]:
    """Every task either policy was evaluated on, by name."""
    return [TaskChange(task, reference.get(task), policy.get(task)) for task in sorted(set(reference) | set(policy))]


def sort_changes(changes: list[TaskChange], key: str) -> list[TaskChange]:
    """The rows ordered by `key` (one of SORT_KEYS); ties by task name."""
    if key == "task":
        return sorted(changes, key=lambda change: change.task)
    if key == "gain":
        return sorted(changes, key=lambda change: (-change.gain, change.task))
    order = {FIXED: 0, BROKEN: 1, UNCHANGED: 2}
    return sorted(changes, key=lambda change: (order[change.mark], -abs(change.gain), change.task))


def counts_text(counts: tuple[int, int] | None) -> str:
    """`c/n`, or `–` where the task was not evaluated under that policy."""
    return f"{counts[1]}/{counts[0]}" if counts else "–"


def tally(changes: list[TaskChange]) -> dict[str, int]:
    counts = dict.fromkeys((FIXED, BROKEN, UNCHANGED), 0)
    for change in changes:
        counts[change.mark] += 1
    return counts
