"""A run's episodes as a tree of steps, with the selected step in detail; branch by hand."""

from __future__ import annotations

import threading
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Header, Input, Select, Static, Tree
from textual.worker import Worker, WorkerState

from screens.base import WorkbenchScreen
from screens.modals import EditResult, EditTextScreen
from screens.plain_text import plain_line, visible_line
from screens.progress_bridge import (
    LogLine,
    MessageProgress,
    NodeStored,
    PendingNodes,
    StageProgress,
)
from screens.store_problems import is_store_problem, shows_store_problems, store_problem_line
from screens.widgets.step_detail import StepDetail
from screens.widgets.trajectory_tree import TrajectoryTree, TreeItem
from screens.words import counted
from store import views

OUTCOMES = [("all outcomes", ""), ("passed", "passed"), ("failed", "failed"), ("running", "running")]


class BranchFinished(Message):
    """Branch by hand stored these new steps."""

    def __init__(self, original_id: int, node_ids: list[int]) -> None:
        super().__init__()
        self.original_id = original_id
        self.node_ids = node_ids


class EpisodeScreen(WorkbenchScreen):
    """Episodes are top-level nodes; expand one to load its steps."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", id="episode.search", tooltip="Find steps and notes containing a text"),
        Binding("n", "next_match", "Next match", id="episode.next_match", key_display="n"),
        Binding("N", "previous_match", "Prev match", id="episode.previous_match", show=False),
        Binding("f", "filter_task", "Filter", id="episode.filter", tooltip="Show only tasks whose name contains a text"),
        Binding("o", "cycle_outcome", "Outcome", id="episode.outcome", tooltip="Show all, passed, failed or running episodes"),
        Binding("b", "branch_by_hand", "Branch", id="episode.branch",
                tooltip="Edit this step's action (and a note) and re-run from here"),
        Binding("r", "reload", "Refresh", id="episode.refresh", tooltip="Read the store again", show=False),
    ]
    AUTO_FOCUS = "#tree"
    screen_title = "Episodes"

    def __init__(self, run_id: int) -> None:
        super().__init__(run_id)
        self.matches: list[int] = []
        self.match_index = -1
        self.pending = PendingNodes()
        self.cancel = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="episode-filters"):
            yield Input(placeholder="task contains… (f)", id="filter-task", compact=True)
            yield Select(OUTCOMES, value="", allow_blank=False, id="filter-outcome", compact=True)
            yield Input(placeholder="search actions, observations, notes… (/)", id="search", compact=True)
            yield Static("", id="match-info")
        with Horizontal(id="episode-body"):
            yield TrajectoryTree(self.db, self.run_id, id="tree")
            yield StepDetail(id="detail")
        yield Footer(compact=True)

    @property
    def tree(self) -> TrajectoryTree:
        return self.query_one("#tree", TrajectoryTree)

    def on_mount(self) -> None:
        super().on_mount()
        self.reload(expand_first=True)
        self.set_interval(0.25, self.flush_pending)

    # -- loading and filtering ------------------------------------------------------

    def filters(self) -> tuple[str, str, str]:
        task = self.query_one("#filter-task", Input).value.strip()
        outcome = self.query_one("#filter-outcome", Select).value
        text = self.query_one("#search", Input).value.strip()
        return task, outcome if isinstance(outcome, str) else "", text

    @shows_store_problems
    def reload(self, *, expand_first: bool = False) -> None:
        task, outcome, text = self.filters()
        rows = views.episodes_of_run(self.db, self.run_id, task=task, outcome=outcome, text=text)
        tree = self.tree
        more = len(rows) if len(rows) == views.EPISODE_PAGE else None
        tree.show_episodes(rows, more_offset=more)
        if not rows:
            self.query_one("#detail", StepDetail).show(
                "No episodes match." if (task or outcome or text) else "This run has no episodes yet."
            )
            return
        first = tree.episode_nodes[rows[0]["id"]]
        if expand_first:
            tree.expand_node(first)
        tree.move_cursor_now(first)

    @on(Input.Submitted, "#filter-task")
    @on(Select.Changed, "#filter-outcome")
    def filter_changed(self) -> None:
        self.reload(expand_first=True)
        self.tree.focus()

    @on(Input.Submitted, "#search")
    @shows_store_problems
    def search_submitted(self) -> None:
        _, _, text = self.filters()
        self.reload()
        self.matches = views.search_nodes(self.db, self.run_id, text) if text else []
        self.match_index = -1
        if self.matches:
            self.action_next_match()
        else:
            self.query_one("#match-info", Static).update("no match" if text else "")
        self.tree.focus()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_filter_task(self) -> None:
        self.query_one("#filter-task", Input).focus()

    def action_cycle_outcome(self) -> None:
        select = self.query_one("#filter-outcome", Select)
        values = [value for _, value in OUTCOMES]
        current = select.value if select.value in values else ""
        select.value = values[(values.index(current) + 1) % len(values)]

    def action_next_match(self, step: int = 1) -> None:
        if not self.matches:
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        self.tree.reveal(self.matches[self.match_index])
        self.query_one("#match-info", Static).update(f"match {self.match_index + 1}/{len(self.matches)}")

    def action_previous_match(self) -> None:
        self.action_next_match(-1)

    def action_reload(self) -> None:
        cursor = self.tree.cursor_node
        item = cursor.data if cursor is not None else None
        self.reload()
        if item is not None and item.kind == "step":
            self.tree.reveal(item.id)

    # -- the detail pane ------------------------------------------------------------

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[TreeItem]) -> None:
        self.show_detail(event.node.data)

    @shows_store_problems
    def show_detail(self, item: TreeItem | None) -> None:
        detail = self.query_one("#detail", StepDetail)
        if item is None:
            return
        if item.kind == "episode":
            row = views.episode(self.db, item.id)
            if row is not None:
                root = views.step_detail(self.db, row["root_id"]) if row["root_id"] else None
                detail.show_episode(row, root)
        elif item.kind == "step":
            row = views.step_detail(self.db, item.id)
            if row is not None:
                detail.show_step(row)
        elif item.kind == "note":
            row = views.note(self.db, item.id)
            if row is not None:
                detail.show_note(row)

    def selected_step_id(self) -> int | None:
        node = self.tree.cursor_node
        if node is None or node.data is None or node.data.kind != "step":
            return None
        return node.data.id

    # -- live updates ---------------------------------------------------------------

    def on_node_stored(self, message: NodeStored) -> None:
        self.pending.add(message.node_id)

    def flush_pending(self) -> None:
        node_ids = self.pending.take()
        if node_ids:
            self.tree.add_live_nodes(node_ids)

    def on_log_line(self, message: LogLine) -> None:
        self.query_one("#match-info", Static).update(plain_line(visible_line(message.text)[-60:]))

    def on_stage_progress(self, message: StageProgress) -> None:
        if message.total:
            self.query_one("#match-info", Static).update(
                plain_line(f"{message.stage} {message.completed}/{message.total}"))

    # -- branch by hand ---------------------------------------------------------------

    @shows_store_problems
    def action_branch_by_hand(self) -> None:
        node_id = self.selected_step_id()
        row = views.step_detail(self.db, node_id) if node_id is not None else None
        if row is None or row["depth"] == 0:
            self.notify("Put the cursor on a step (not an episode or a note) to branch from it.", severity="warning")
            return
        hint = (
            f"Step {row['depth']} of episode #{row['episode_id']} ({visible_line(row['task'])}). "
            "The environment is restored to the state before this step, your action runs, then the policy "
            "continues to the end of the budget. The new steps form a branch beside this one."
        )

        def edited(result: EditResult | None) -> None:
            if result is not None:
                self.notify(f"Branching from step {row['depth']}…")
                self.run_branch(node_id, result.text, result.extra.strip() or None)

        self.app.push_screen(
            EditTextScreen(f"Branch by hand from step {row['depth']}", row["action"] or "", hint=hint,
                           extra_label="Note for the policy (optional)", save_label="Run branch"),
            edited,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="branch")
    def run_branch(self, node_id: int, action_text: str, note_text: str | None) -> list[int]:
        from workbench.backtrack import branch_by_hand

        self.cancel.clear()
        new_ids = branch_by_hand(
            self.workbench.db_path, node_id, action_text, note_text=note_text,
            progress=MessageProgress(self), cancel=self.cancel,
        )
        self.post_message(BranchFinished(node_id, list(new_ids)))
        return list(new_ids)

    def on_branch_finished(self, message: BranchFinished) -> None:
        self.flush_pending()
        self.tree.add_live_nodes(message.node_ids)
        self.tree.refresh_step(message.original_id, reload_children=True)  # now a backtrack point, maybe a note
        if message.node_ids:
            self.tree.reveal(message.node_ids[0])
            self.notify(f"Branch stored: {counted(len(message.node_ids), 'new step')}.")
        else:
            self.notify("The branch produced no steps.", severity="warning")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "branch":
            error = event.worker.error
            if isinstance(error, ImportError):
                text = "Branch by hand needs workbench.backtrack.branch_by_hand, which this version lacks."
            elif error is not None and is_store_problem(error):
                text = f"Branch by hand failed: {store_problem_line(self.workbench.db_path, error)}"
            else:
                text = f"Branch by hand failed: {error}"
            self.notify(text, severity="error", timeout=8)
