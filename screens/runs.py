"""The home screen: every run in the store, newest first and selected; Enter opens it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Static

from screens import table_rows
from screens.base import WorkbenchScreen
from screens.modals import ConfirmScreen
from screens.plain_text import plain_line, visible_line
from screens.store_problems import shows_store_problems
from screens.store_watch import StoreRead, WatchesStore
from screens.words import counted
from store import admin, views

STAGE_SHORT = {
    "explore": "explore",
    "reflect": "reflect",
    "backtrack": "backtrack",
    "curate": "curate",
    "export": "export",
    "distill": "distill",
    "evaluate": "eval",
    "baseline:rft": "rft",
    "baseline:grpo": "grpo",
    "baseline:early_experience": "early-exp",
}
STAGE_STYLE = {"finished": "green", "running": "yellow bold", "pending": "dim", "failed": "red"}
STATUS_STYLE = {"finished": "green", "running": "yellow", "interrupted": "magenta", "failed": "red bold"}


def stages_text(stages: list[tuple[str, str]], *, short: bool = True) -> Text:
    text = Text()
    for index, (stage, status) in enumerate(stages):
        if index:
            text.append("›", style="dim")
        name = STAGE_SHORT.get(stage, stage) if short else stage
        text.append(visible_line(name) + ("✓" if status == "finished" else "…" if status == "running" else ""),
                    style=STAGE_STYLE.get(status, ""))
    return text


def rate_text(rate: float | None) -> Text:
    if rate is None:
        return Text("–", style="dim")
    style = "green" if rate >= 0.5 else "yellow" if rate > 0 else "red"
    return Text(f"{rate:.0%}", style=style, justify="right")


class RunsScreen(WatchesStore, WorkbenchScreen):
    """The runs table has focus with the newest run selected, so Enter opens it at once.
    Runs that other programs start or advance appear and update by themselves."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_run", "Open", id="runs.open", tooltip="Open the selected run's episode tree", priority=True),
        Binding("n", "new_run", "New run", id="runs.new", tooltip="Start exploration on a config file or a form"),
        Binding("slash", "search", "Search", id="runs.search",
                tooltip="Search the actions, observations and notes of every run"),
        Binding("x,delete", "delete_run", "Delete", id="runs.delete", tooltip="Delete the selected run (asks first)"),
        Binding("r", "reload", "Refresh", id="runs.refresh", show=False,
                tooltip="Read the store again (it is read by itself when another program writes)"),
    ]
    AUTO_FOCUS = "#runs-table"
    screen_title = "Runs"

    def __init__(self) -> None:
        super().__init__(None)
        self.rows: dict[int, dict] = {}
        self.filled = False  # the table was filled once (an empty store too)

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="run-summary")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.add_column("#", key="id")
        table.add_column("name", key="name")
        table.add_column("status", key="status")
        table.add_column("episodes", key="episodes")
        table.add_column("success", key="success")
        table.add_column("proposed", key="proposed")
        table.add_column("created", key="created")
        table.add_column("stages", key="stages")
        self.reload()
        super().on_mount()
        self.watch_store(views.runs_overview)

    def on_unmount(self) -> None:
        self.stop_watching_store()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_store_read(self, message: StoreRead) -> None:
        self.show_rows(message.result)

    @shows_store_problems
    def reload(self) -> None:
        self.show_rows(views.runs_overview(self.db))

    def show_rows(self, rows: list[dict]) -> None:
        """Fill the table; the selected run stays selected. Rows read again but unchanged
        leave the table as it is (no flicker while a run writes)."""
        fresh = {row["id"]: row for row in rows}
        table = self.query_one("#runs-table", DataTable)
        if self.filled and fresh == self.rows and table.row_count == len(fresh):
            return
        self.filled = True
        selected = self.current_run_id()
        table.clear()
        self.rows = fresh
        for row in self.rows.values():
            episodes = f"{row['finished']}/{row['episodes']}" if row["finished"] != row["episodes"] else str(row["episodes"])
            # Strings from the store are cells of plain Text: a str cell would be read as markup.
            table.add_row(
                Text(str(row["id"]), justify="right"),
                plain_line(row["name"] or "–", width=40),
                plain_line(row["status"], style=STATUS_STYLE.get(row["status"], "")),
                Text(episodes, justify="right"),
                rate_text(row["success_rate"]),
                Text(str(row["proposed"]), style="bold yellow" if row["proposed"] else "dim", justify="right"),
                plain_line((row["created_at"] or "")[:16].replace("T", " ")),
                stages_text(row["stages"]),
                key=str(row["id"]),
            )
        if selected in self.rows:
            table_rows.move_to_id(table, selected)
        elif self.rows:
            table.move_cursor(row=0)
        self.show_summary()

    def current_run_id(self) -> int | None:
        return table_rows.selected_id(self.query_one("#runs-table", DataTable)) if self.rows else None

    @shows_store_problems
    def show_summary(self) -> None:
        summary = self.query_one("#run-summary", Static)
        run_id = self.current_run_id()
        if run_id is None:
            summary.update(
                Text.assemble(
                    ("No runs yet. ", "bold"),
                    "Press n to start one here, or run ",
                    ("leafe-tui --batch CONFIG.toml --db " + str(self.workbench.db_path), "cyan"),
                    " and come back.",
                )
            )
            return
        row = self.rows[run_id]
        header = views.run_header(self.db, run_id) or {}
        counts = views.correction_counts(self.db, run_id)
        text = Text.assemble(
            (f"run {run_id} {visible_line(row['name'])}" if row["name"] else f"run {run_id}", "bold"),
            "  {} {}  model {} ({})\n".format(*(visible_line(header.get(key, ""))
                                                 for key in ("env", "suite", "model", "backend"))),
            "stages  ", stages_text(row["stages"], short=False), "\n",
            "corrections  ",
            *[(f"{counts[status]} {status}  ", style) for status, style in
              (("proposed", "yellow"), ("approved", "green"), ("edited", "cyan"), ("rejected", "red"))],
        )
        if row.get("error"):
            # The last line of a stored traceback is the exception, from whatever raised it.
            last = (row["error"].strip().splitlines() or [""])[-1]
            text.append("\nerror: ", style="red")
            text.append(plain_line(last, style="red"))
        summary.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_summary()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        run_id = self.current_run_id()
        if run_id is not None:
            self.workbench.open_run(run_id)

    def action_new_run(self) -> None:
        self.workbench.action_new_run()

    def action_search(self) -> None:
        from screens.search import SearchScreen

        self.app.push_screen(SearchScreen())

    def action_reload(self) -> None:
        self.reload()

    def action_delete_run(self) -> None:
        run_id = self.current_run_id()
        if run_id is None:
            return
        row = self.rows[run_id]
        question = (
            f"Delete run {run_id} ({visible_line(row['name']) or 'unnamed'})?\n\n"
            f"This removes its {counted(row['episodes'], 'episode')} with their steps, notes, corrections and "
            "evaluation rows. Adapters and datasets stay. It cannot be undone."
        )

        def deleted(removed: dict) -> None:
            self.notify(f"Deleted run {run_id} ({counted(removed.get('nodes', 0), 'step')}).")
            self.reload()

        def answered(yes: bool | None) -> None:
            if yes:
                self.write_store(f"Deleting run {run_id}", lambda db: admin.delete_run(db, run_id), deleted)

        self.app.push_screen(ConfirmScreen(question), answered)
