"""`?`: every key of the screen underneath, with what it does."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


@dataclass(frozen=True)
class KeyHelp:
    """One row of the help: how the key is shown, what it does, where it is defined."""

    key: str
    description: str
    tooltip: str
    scope: str
    id: str


# Keys of the built-in widgets (tables, trees, scrolling panes) a person uses on our
# screens, said in our words; every other built-in binding ("Cursor to next ancestor",
# "Page Right") is the widget's internals and stays out of the help.
MOVING = "moving around"
WIDGET_KEYS = {  # key: (what it does, where the help lists it)
    "up": ("Move up", MOVING),
    "down": ("Move down", MOVING),
    "enter": ("Open or select the highlighted row", MOVING),
    "pageup": ("Page up", MOVING),
    "pagedown": ("Page down", MOVING),
    "home": ("To the first row", MOVING),
    "end": ("To the last row", MOVING),
    "tab": ("Next pane", MOVING),
    "shift+tab": ("Previous pane", MOVING),
    "ctrl+p": ("Command palette: every action by name", MOVING),
    "ctrl+q": ("Quit", "app"),  # shares the row of our own `q`
}


def keys_of(screen: Screen) -> list[KeyHelp]:
    """The workbench's own active bindings (focused widget, screen, app: each has an id),
    then the built-in keys of WIDGET_KEYS, deduplicated by key."""
    app = screen.app
    rows: dict[str, KeyHelp] = {}
    rank: dict[str, int] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description:
            continue
        node = active.node
        if binding.id:
            scope = "app" if node is app else "screen" if node is screen else type(node).__name__
            description, tooltip = binding.description, binding.tooltip or active.tooltip or ""
        elif key in WIDGET_KEYS:
            (description, scope), tooltip = WIDGET_KEYS[key], ""
            rank[app.get_key_display(binding)] = list(WIDGET_KEYS).index(key)  # listed in WIDGET_KEYS' order
        else:
            continue
        rows[key] = KeyHelp(
            key=app.get_key_display(binding),
            description=description,
            tooltip=tooltip,
            scope=scope,
            id=binding.id or "",
        )
    # Keys that do the same thing share a row ("q, ^q  Quit"), led by the workbench's own
    # binding (it has an id) rather than a built-in one.
    merged: dict[tuple[str, str], KeyHelp] = {}
    for row in rows.values():
        same = merged.get((row.description, row.scope))
        if same is not None:
            first, second = (row, same) if row.id and not same.id else (same, row)
            row = dataclasses.replace(first, key=f"{first.key}, {second.key}", tooltip=first.tooltip or second.tooltip)
        merged[(row.description, row.scope)] = row
    order = {"screen": 0, "app": 1, MOVING: 3}
    return sorted(merged.values(), key=lambda row: (order.get(row.scope, 2), rank.get(row.key, 0), row.key.lower(), row.key))


class HelpScreen(ModalScreen[None]):
    """Lists the keys of the screen it was opened from; any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, title: str, keys: list[KeyHelp]) -> None:
        super().__init__()
        self.title_text = title
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
        table.add_column("Key", style="bold cyan", no_wrap=True)
        table.add_column("Does")
        table.add_column("Where", style="dim", no_wrap=True)
        for row in self.keys:
            does = Text(row.description)
            if row.tooltip and row.tooltip != row.description:
                does.append(f" — {row.tooltip}", style="dim")
            table.add_row(row.key, does, row.scope)
        with Vertical(classes="dialog dialog-wide", id="help-dialog"):
            yield Label(f"Keys: {self.title_text}", classes="dialog-title")
            with VerticalScroll():
                yield Static(table, id="help-keys")
            yield Static("The mouse works too: click rows and tree nodes, scroll panes. ctrl+p lists every command.",
                         classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
