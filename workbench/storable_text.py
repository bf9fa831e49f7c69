"""Model text made safe to store: valid UTF-8, no NUL, bounded in length, with a record of
what was changed (`visible_text.py` makes text safe to show)."""

from __future__ import annotations

from typing import Any

MAX_ACTION_CHARS = 16_000  # an enormous answer is stored cut, and the cut is recorded


def clean_text(text: Any) -> tuple[str, dict]:
    """Model text made storable: valid UTF-8, bounded. Returns it and what was changed."""
    notes: dict[str, Any] = {}
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
        notes["invalid_utf8"] = True
    text = str(text)
    repaired = text.encode("utf-8", errors="replace").decode("utf-8")
    if repaired != text:
        notes["invalid_utf8"] = True
        text = repaired
    text = text.replace("\x00", "")
    if len(text) > MAX_ACTION_CHARS:
        notes["action_truncated"] = len(text)
        text = text[:MAX_ACTION_CHARS]
    return text, notes
