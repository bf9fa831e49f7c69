"""Text from outside (a model's answer, a task file, a submission's output, a note, an
exception message) made safe to show in a terminal.

A terminal obeys control characters: `ESC ] 52 ; c ; <base64> BEL` sets its clipboard,
`ESC ] 0 ; text BEL` its title, `ESC [ 2 J` blanks it, and tmux passes these through. So
every such string is shown through `visible`: each control character becomes a visible
stand-in (ESC is shown as `␛`), while line breaks and tabs stay what they are. Markup is
not this module's concern: the screens hand text to widgets as plain `Text`, never as
markup, and the core never imports Textual.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls other than tab and line feed, DEL, the C1 controls, lone surrogates (they
# cannot be written to a UTF-8 terminal at all), and the bidirectional overrides and
# isolates, which reorder what is shown so that text reads as something it is not.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")

_CONTROL_PICTURES = 0x2400  # U+2400..U+241F picture the C0 controls, in order
_DELETE_PICTURE = "\u2421"  # ␡


def _stand_in(match: re.Match[str]) -> str:
    character = match.group()
    code = ord(character)
    if code < 0x20:
        return chr(_CONTROL_PICTURES + code)
    if code == 0x7F:
        return _DELETE_PICTURE
    if code <= 0xFF:
        return f"\\x{code:02x}"  # C1 controls have no pictures: spelled as Python would
    return f"\\u{code:04x}"


def visible(text: object) -> str:
    """`text` with every control character shown rather than obeyed; `\\n` and `\\t` kept.

    `None` is shown as an empty string and anything else as its `str`. A Windows line end
    (`\\r\\n`) is a line break; a lone `\\r` is shown as `␍`. Applying it twice changes
    nothing more, so a caller never has to know whether a string was already made visible.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    if _INVISIBLE.search(text) is None:
        return text
    return _INVISIBLE.sub(_stand_in, text)


def visible_values(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings, numbers) with `visible` applied to
    every string in it, keys included: for printing a summary someone else's text is in."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible_values(key): visible_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [visible_values(item) for item in value]
    return value


def visible_line(text: object) -> str:
    """`visible`, with every run of whitespace (line breaks included) made one space: for
    a table cell, a tree label or a status line."""
    return " ".join(visible(text).split())
