"""Counts in words: "1 step", "2 steps", "1 branch", "3 branches"."""

from __future__ import annotations

# Plural nouns whose singular is not the plural less its final "s".
IRREGULAR_SINGULARS = {
    "successes": "success",
    "branches": "branch",
    "batches": "batch",
    "indices": "index",
}


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun in the number that agrees with it (noun is the singular)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def singular(plural: str) -> str:
    """The singular of a plural count name such as a stage summary's keys ("branches")."""
    if plural in IRREGULAR_SINGULARS:
        return IRREGULAR_SINGULARS[plural]
    return plural[:-1] if plural.endswith("s") and not plural.endswith("ss") else plural


def counted_as(count: int, plural: str) -> str:
    """`count` with a plural noun made to agree: counted_as(1, "branches") == "1 branch"."""
    return f"{count} {plural if count != 1 else singular(plural)}"
