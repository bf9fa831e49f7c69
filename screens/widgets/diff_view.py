"""A coloured unified diff between the original action at tau and the corrected one."""

from __future__ import annotations

import difflib

from rich.text import Text
from textual.widgets import Static

from screens.plain_text import visible


def diff_text(original: str, corrected: str, *, before: str = "original", after: str = "corrected") -> Text:
    """difflib's unified diff, lines coloured: removed red, added green, hunks cyan; control
    characters in either text are shown, never obeyed."""
    lines = list(
        difflib.unified_diff(
            visible(original).splitlines(), visible(corrected).splitlines(),
            fromfile=before, tofile=after, lineterm="", n=2,
        )
    )
    if not lines:
        return Text("(no difference)", style="dim")
    text = Text()
    for line in lines:
        if line.startswith(("---", "+++")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("+"):
            style = "green"
        else:
            style = ""
        text.append(line + "\n", style=style)
    text.rstrip()
    return text


class DiffView(Static):
    """Shows the diff of two texts; call `show(original, corrected)`."""

    DEFAULT_CSS = """
    DiffView {
        padding: 0 1;
        height: auto;
    }
    """

    def show(self, original: str, corrected: str) -> None:
        self.update(diff_text(original, corrected))
