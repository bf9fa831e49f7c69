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
from screens.store_watch import StoreRead, WatchesStore
from screens.widgets.step_detail import StepDetail
from screens.widgets.trajectory_tree import TrajectoryTree, TreeItem
from screens.words import counted
from store import browse, views
from store.browse import EpisodeFilter

OUTCOMES = [("all outcomes", ""), ("passed", "passed"), ("failed", "failed"), ("running", "running")]
MARKS = [("any marks", ""), ("★ has a correction", "correction"), ("⟲ has a backtrack point", "backtrack")]
DEPTHS = [("any branch depth", 0), ("a branch ≥ 1 deep", 1), ("a branch ≥ 2 deep", 2), ("a branch ≥ 3 deep", 3)]
SORTS = [("by episode #", "id"), ("by score gain", "gain")]
ANY_AUTHOR = ("notes by anyone", "")
LIVE_NODES_PER_READ = 500  # a flood of new steps is placed a page per second


class LiveActivity:
    """What the watcher read after the store changed: the shown episodes, again, and the
    steps stored since the last look."""

    def __init__(self, episodes: list[dict], node_ids: list[int], run_status: str | None) -> None:
        self.episodes = episodes
        self.node_ids = node_ids
        self.run_status = run_status


class BranchFinished(Message):
    """Branch by hand stored these new steps."""

    def __init__(self, original_id: int, node_ids: list[int]) -> None:
        super().__init__()
        self.original_id = original_id
        self.node_ids = node_ids


class EpisodeScreen(WatchesStore, WorkbenchScreen):
    """Episodes are top-level nodes; expand one to load its steps. Steps and episodes that
    a run stores (here or in another program) appear as they land."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", id="episode.search", tooltip="Find steps and notes containing a text"),
        Binding("n", "next_match", "Next match", id="episode.next_match", key_display="n", show=False,
                tooltip="The next step that the search found"),
        Binding("N", "previous_match", "Prev match", id="episode.previous_match", show=False,
                tooltip="The previous step that the search found"),
        Binding("f", "filter_task", "Filter", id="episode.filter", tooltip="Show only tasks whose name contains a text"),
        Binding("o", "cycle_outcome", "Outcome", id="episode.outcome", tooltip="Show all, passed, failed or running episodes"),
        Binding("t", "next_mark('backtrack')", "Next ⟲", id="episode.next_backtrack",
                tooltip="The next backtrack point (a step the branches replace)"),
        Binding("T", "next_mark('backtrack', -1)", "Prev ⟲", id="episode.previous_backtrack", show=False,
                tooltip="The previous backtrack point"),
        Binding("s", "next_mark('correction')", "Next ★", id="episode.next_correction",
                tooltip="The next step with corrections"),
        Binding("S", "next_mark('correction', -1)", "Prev ★", id="episode.previous_correction", show=False,
                tooltip="The previous step with corrections"),
        Binding("m", "cycle('#filter-mark')", "Marks", id="episode.marks", show=False,
                tooltip="Show all episodes, those with a correction, or those with a backtrack point"),
        Binding("D", "cycle('#filter-depth')", "Depth", id="episode.depth", show=False,
                tooltip="Show episodes with a branch at least 1, 2 or 3 deep"),
        Binding("a", "cycle('#filter-author')", "Author", id="episode.author", show=False,
                tooltip="Show episodes with a note by this author (template, model, human …)"),
        Binding("g", "cycle('#sort')", "Sort", id="episode.sort", show=False,
                tooltip="Sort episodes by number, or by score gain (best branch minus the original)"),
        Binding("b", "branch_by_hand", "Branch", id="episode.branch",
                tooltip="Edit this step's action (and a note) and re-run from here"),
        Binding("r", "reload", "Refresh", id="episode.refresh", tooltip="Read the store again", show=False),
    ]
    AUTO_FOCUS = "#tree"
    screen_title = "Episodes"

    def __init__(self, run_id: int, *, reveal_step: int | None = None) -> None:
        super().__init__(run_id)
        self.reveal_step = reveal_step  # opened from a search hit: the cursor goes there
        self.last_node_id = 0  # steps after this one are placed as the watcher finds them
        self.shown_rows: dict[int, dict] = {}
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
        with Horizontal(id="episode-marks"):
            yield Select(MARKS, value="", allow_blank=False, id="filter-mark", compact=True)
            yield Select(DEPTHS, value=0, allow_blank=False, id="filter-depth", compact=True)
            yield Select([ANY_AUTHOR], value="", allow_blank=False, id="filter-author", compact=True)
            yield Select(SORTS, value="id", allow_blank=False, id="sort", compact=True)
            yield Static("", id="episode-count")
        with Horizontal(id="episode-body"):
            yield TrajectoryTree(self.db, self.run_id, id="tree")
            yield StepDetail(id="detail")
        yield Footer(compact=True)

    @property
    def tree(self) -> TrajectoryTree:
        return self.query_one("#tree", TrajectoryTree)

    def on_mount(self) -> None:
        super().on_mount()
        self.fill_author_filter()
        self.last_node_id = self.latest_node_id()
        self.reload(expand_first=self.reveal_step is None)
        if self.reveal_step is not None:
            # Once the tree has its lines: the cursor then lands on the step and stays.
            self.call_after_refresh(self.reveal_search_hit)
        self.set_interval(0.25, self.flush_pending)
        self.watch_store(self.read_activity)

    def on_unmount(self) -> None:
        self.stop_watching_store()

    def reveal_search_hit(self) -> None:
        if self.reveal_step is not None:
            self.tree.reveal(self.reveal_step)
            self.tree.focus()

    @shows_store_problems
    def latest_node_id(self) -> int:
        return browse.last_node_id(self.db)

    @shows_store_problems
    def fill_author_filter(self) -> None:
        authors = browse.note_authors(self.db, self.run_id)
        # Author names come from the store: plain Text, never markup.
        options = [ANY_AUTHOR, *((plain_line(f"notes by {author}"), author) for author in authors)]
        self.query_one("#filter-author", Select).set_options(options)

    # -- loading and filtering ------------------------------------------------------

    def select_value(self, selector: str, default: object) -> object:
        value = self.query_one(selector, Select).value
        return default if value is Select.BLANK else value

    def current_filter(self) -> EpisodeFilter:
        return EpisodeFilter(
            task=self.query_one("#filter-task", Input).value.strip(),
            outcome=str(self.select_value("#filter-outcome", "")),
            text=self.query_one("#search", Input).value.strip(),
            mark=str(self.select_value("#filter-mark", "")),
            min_branch_depth=int(self.select_value("#filter-depth", 0)),  # type: ignore[call-overload]
            note_author=str(self.select_value("#filter-author", "")),
            sort=str(self.select_value("#sort", "id")),
        )

    def filters(self) -> tuple[str, str, str]:
        shown = self.current_filter()
        return shown.task, shown.outcome, shown.text

    @shows_store_problems
    def reload(self, *, expand_first: bool = False) -> None:
        shown = self.current_filter()
        rows = browse.episodes(self.db, self.run_id, shown)
        tree = self.tree
        tree.episode_filter = shown
        self.shown_rows = {row["id"]: row for row in rows}
        more = len(rows) if len(rows) == views.EPISODE_PAGE else None
        tree.show_episodes(rows, more_offset=more)
        self.show_count(rows)
        if not rows:
            self.query_one("#detail", StepDetail).show(
                "No episodes match." if shown.narrows() else "This run has no episodes yet."
            )
            return
        first = tree.episode_nodes[rows[0]["id"]]
        if expand_first:
            tree.expand_node(first)
        tree.move_cursor_now(first)
        # The pane follows the list: the cursor may not have moved (line 0 before and
        # after), so no highlight message would replace an episode the filter just hid.
        self.show_detail(first.data)

    def show_count(self, rows: list[dict]) -> None:
        more = "+" if len(rows) == views.EPISODE_PAGE else ""
        self.query_one("#episode-count", Static).update(
            plain_line(f"{counted(len(rows), 'episode')}{more} shown"))

    @on(Input.Submitted, "#filter-task")
    @on(Select.Changed, "#filter-outcome")
    @on(Select.Changed, "#filter-mark")
    @on(Select.Changed, "#filter-depth")
    @on(Select.Changed, "#filter-author")
    @on(Select.Changed, "#sort")
    def filter_changed(self) -> None:
        self.reload(expand_first=True)
        self.tree.focus()

    def action_cycle(self, selector: str) -> None:
        """The next choice of one of the filter bar's lists (the key beside it in the help)."""
        select = self.query_one(selector, Select)
        values = [value for _, value in select._options if value is not Select.BLANK]
        if not values:
            return
        current = select.value if select.value in values else values[0]
        select.value = values[(values.index(current) + 1) % len(values)]

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
        self.action_cycle("#filter-outcome")

    @shows_store_problems
    def action_next_mark(self, mark: str, step: int = 1) -> None:
        """The cursor to the next (or previous) step with this mark, in the shown episodes,
        opening the tree down to it."""
        tree = self.tree
        episode_ids = list(tree.episode_nodes)
        marked = browse.marked_steps(self.db, episode_ids, mark)
        sign = "⟲ backtrack point" if mark == "backtrack" else "★ correction"
        if not marked:
            self.notify(f"No {sign} in the shown episodes.", severity="warning", timeout=3)
            return
        order = {episode_id: index for index, episode_id in enumerate(episode_ids)}
        keys = [(order[episode_id], node_id) for episode_id, node_id in marked]
        here = self.cursor_position(order)
        if here is None:
            target = 0 if step > 0 else len(keys) - 1
        elif step > 0:
            target = next((index for index, key in enumerate(keys) if key > here), 0)
        else:
            target = next((index for index in reversed(range(len(keys))) if keys[index] < here), len(keys) - 1)
        tree.reveal(marked[target][1])
        self.query_one("#match-info", Static).update(plain_line(f"{sign} {target + 1}/{len(marked)}"))

    def cursor_position(self, order: dict[int, int]) -> tuple[int, int] | None:
        """(the episode's place in the list, the step id) under the cursor; an episode row
        is before its steps."""
        node = self.tree.cursor_node
        item = node.data if node is not None else None
        if item is None:
            return None
        if item.kind == "episode":
            return (order.get(item.id, -1), 0)
        position = views.node_position(self.db, item.id if item.kind == "step" else item.node_id or 0)
        if position is None or position[0] not in order:
            return None
        return (order[position[0]], item.id if item.kind == "step" else item.node_id or 0)

    def action_next_match(self, step: int = 1) -> None:
        if not self.matches:
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        self.tree.reveal(self.matches[self.match_index])
        self.query_one("#match-info", Static).update(f"match {self.match_index + 1}/{len(self.matches)} (n, N)")

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

    def read_activity(self, db) -> LiveActivity:
        """In the watcher's worker: the shown episodes again, and the steps since the last look."""
        header = views.run_header(db, self.run_id)
        return LiveActivity(
            browse.episodes(db, self.run_id, self.tree.episode_filter),
            browse.nodes_after(db, self.run_id, self.last_node_id, limit=LIVE_NODES_PER_READ),
            header["status"] if header else None,
        )

    def on_store_read(self, message: StoreRead) -> None:
        activity: LiveActivity = message.result
        tree = self.tree
        for row in activity.episodes:
            if self.shown_rows.get(row["id"]) != row:
                self.shown_rows[row["id"]] = row
                node = tree.episode_nodes.get(row["id"])
                if node is None:
                    tree.add_episode(row)
                else:
                    node.set_label(tree.episode_label(row))
        if activity.node_ids:
            self.last_node_id = max(self.last_node_id, activity.node_ids[-1])
            tree.add_live_nodes(activity.node_ids, grow=True)
            if len(activity.node_ids) == LIVE_NODES_PER_READ and self.store_changes is not None:
                self.store_changes.version = None  # more to place: read again next second
        self.show_count(list(self.shown_rows.values()))
        if activity.run_status is not None and not self.sub_title.endswith(activity.run_status):
            self.set_titles()

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
            elif error is not None and is_store_problem(error, self.workbench.db_path):
                text = f"Branch by hand failed: {store_problem_line(self.workbench.db_path, error)}"
            else:
                text = f"Branch by hand failed: {error}"
            self.notify(text, severity="error", timeout=8)
