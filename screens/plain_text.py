"""Text from outside (models, task files, submissions, notes, the store) for widgets.

Two holes to close, and every screen closes them here: a control character reaches the
terminal (an OSC 52 sets the clipboard, `ESC [ 2 J` blanks the screen), and a string
given to a widget as `str` is parsed as markup (`[@click=app.quit]` in a model's answer
becomes a button). `plain` returns a Rich `Text`, which no widget parses, with control
characters made visible by the core's `visible`.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from workbench.visible_text import visible, visible_line

__all__ = ["plain", "plain_line", "shortened", "visible", "visible_line"]


def plain(text: object, style: str | Style = "", **options: object) -> Text:
    """`text` as a `Text` shown as written: control characters visible, no markup."""
    return Text(visible(text), style=style, **options)  # type: ignore[arg-type]


def shortened(text: object, width: int) -> str:
    """`text` on one line (whitespace runs made one space), cut to `width` with `…`."""
    flat = visible_line(text)
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def plain_line(text: object, style: str | Style = "", *, width: int | None = None, **options: object) -> Text:
    """`plain` on one line, cut to `width` characters when given: for cells and labels."""
    flat = shortened(text, width) if width is not None else visible_line(text)
    return Text(flat, style=style, **options)  # type: ignore[arg-type]
