"""Text from outside (a model's answer, an exception message from generated code, a task
file) made storable. A Python string may hold lone surrogates (`'x' + chr(0xdcff)`, what
`surrogateescape` decoding of bytes leaves), which UTF-8, and so SQLite, cannot encode: the
store replaces each with U+FFFD (�), as a UTF-8 decoder does with bytes it cannot read,
instead of failing the write and, with it, a whole lock-step wave of steps.
"""

from __future__ import annotations

import re
from typing import Any

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (in lists, tuples and dicts too)
    replaced by U+FFFD; anything else as it was."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, list | tuple):
        return type(value)(storable(item) for item in value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value
