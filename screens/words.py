"""Counts in words: "1 step", "2 steps" (the core's helper, shared with batch output)."""

from __future__ import annotations

from workbench.words import counted

__all__ = ["counted"]
