"""`/` on the runs screen: search the actions, observations and notes of every run, and
open a hit in its run's tree, the cursor on the step."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Input, Static

from screens.base import WorkbenchScreen
from screens.plain_text import plain_line, visible_line
from screens.store_problems import shows_store_problems
from screens.words import counted
from store.search import HIT_LIMIT, search_runs, words_of

KIND_STYLE = {"action": "cyan", "observation": "", "note": "italic magenta"}


class SearchScreen(WorkbenchScreen):
    """A query field above a table of hits, newest run first; Enter on a hit opens it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_hit", "Open", id="search.open", tooltip="Open the hit's step in its run's tree"),
        Binding("slash", "edit_query", "New search", id="search.query", tooltip="Back to the query field"),
    ]
    AUTO_FOCUS = "#search-query"
    screen_title = "Search"

    def __init__(self) -> None:
        super().__init__(None)
        self.hits: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="words in an action, an observation or a note, in any run (Enter)",
                    id="search-query", compact=True)
        yield Static("", id="search-info")
        yield DataTable(id="search-hits", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#search-hits", DataTable)
        for label, key in (("run", "run"), ("task", "task"), ("ep", "episode"), ("step", "step"),
                           ("in", "kind"), ("text", "text")):
            table.add_column(label, key=key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Enter in the query field searches; on the table it opens the hit.
        if action == "open_hit":
            return self.focused is self.query_one("#search-hits", DataTable)
        return super().check_action(action, parameters)

    @on(Input.Submitted, "#search-query")
    @shows_store_problems
    def search(self) -> None:
        text = self.query_one("#search-query", Input).value
        self.hits = search_runs(self.db, text)
        table = self.query_one("#search-hits", DataTable)
        table.clear()
        words = words_of(text)
        for index, hit in enumerate(self.hits):
            # The snippet comes from a model or a task file: plain Text, highlighted here.
            snippet = plain_line(hit["snippet"], width=70)
            snippet.highlight_words(words, style="bold yellow", case_sensitive=False)
            run = f"{hit['run_id']} {visible_line(hit['run_name'])}" if hit["run_name"] else str(hit["run_id"])
            table.add_row(
                plain_line(run, width=22),
                plain_line(hit["task"], width=18),
                Text(f"#{hit['episode_id']}", justify="right"),
                Text(str(hit["depth"]), justify="right"),
                Text(hit["kind"], style=KIND_STYLE[hit["kind"]]),
                snippet,
                key=str(index),
            )
        more = f" (the first {HIT_LIMIT})" if len(self.hits) >= HIT_LIMIT else ""
        info = (f"{counted(len(self.hits), 'hit')}{more}; Enter opens one in its tree" if self.hits
                else "no hit" if words else "")
        self.query_one("#search-info", Static).update(plain_line(info))
        if self.hits:
            table.move_cursor(row=0)
            table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_hit()

    def action_open_hit(self) -> None:
        table = self.query_one("#search-hits", DataTable)
        if not self.hits or table.cursor_row < 0 or table.cursor_row >= len(self.hits):
            return
        hit = self.hits[table.cursor_row]
        self.workbench.open_run(hit["run_id"], step_id=hit["node_id"])

    def action_edit_query(self) -> None:
        self.query_one("#search-query", Input).focus()
