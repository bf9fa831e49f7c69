"""The trajectory tree: a run's episodes, their steps, notes and branches, loaded lazily.

Episodes are the top-level nodes. A step's children are fetched from the store only when
it is expanded (a page at a time), so a 10,000-step episode opens as fast as a small one.
Branches are siblings of the step they replace, as in the store; notes hang under the
step they reflect on. Labels are plain `Text` with control characters made visible: task
names, actions and notes come from outside. Every method that reads the store reports a
store it cannot read in one line (`shows_store_problems`) instead of ending the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import sqlite_utils
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from screens.plain_text import visible, visible_line
from screens.store_problems import shows_store_problems
from screens.words import counted
from store import browse, views

# Expand-all stops after this many steps, so one key never freezes the interface on a
# 10,000-step episode; the rest stays one key away.
EXPAND_ALL_LIMIT = 2000


@dataclass(frozen=True)
class TreeItem:
    """What a tree node stands for: an episode, a step, a note, or more children to load."""

    kind: str  # episode | step | note | more
    id: int  # episode id, node id, note id, or (for more) the parent's node id
    node_id: int | None = None  # the store node whose children this tree node lists
    offset: int = 0  # for `more`: how many children are already shown


def first_telling_line(action: str | None, width: int = 56) -> str:
    """The first line of an action that says something (skips `def`, imports, blanks),
    with control characters made visible."""
    lines = [" ".join(line.split()) for line in visible(action).splitlines() if line.strip()]
    telling = [
        line for line in lines
        if not line.startswith(("def ", "import ", "from ", "```", '"""', "#"))
    ]
    line = (telling or lines or [""])[0]
    return line if len(line) <= width else line[: width - 1] + "…"


class TrajectoryTree(Tree[TreeItem]):
    """A run's episodes and steps; children load when a node is expanded."""

    # Every key of the tree, the built-in ones included, with a description and an id: the
    # help lists them and a person can remap them.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right", "expand_cursor", "Expand and enter", show=False, id="tree.expand",
                tooltip="Open this node and move to its first child"),
        Binding("left", "collapse_cursor", "Collapse", show=False, id="tree.collapse",
                tooltip="Close this node, or move to its parent"),
        Binding("shift+space", "expand_all", "Expand all", show=False, id="tree.expand_all",
                tooltip="Open everything under this node (again: close it all)"),
        Binding("space", "toggle_node", "Open/close", show=False, id="tree.toggle",
                tooltip="Open or close this node"),
        Binding("enter", "select_cursor", "Select", show=False, id="tree.select",
                tooltip="Open or close; on a '… more' line, load the next page"),
        Binding("up", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("down", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("shift+left", "cursor_parent", "To parent", show=False, id="tree.parent"),
        Binding("shift+right", "cursor_parent_next_sibling", "To next ancestor", show=False,
                id="tree.next_ancestor"),
        Binding("shift+up", "cursor_previous_sibling", "To previous sibling", show=False,
                id="tree.previous_sibling"),
        Binding("shift+down", "cursor_next_sibling", "To next sibling", show=False, id="tree.next_sibling"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "trajectory-tree--episode",
        "trajectory-tree--passed",
        "trajectory-tree--failed",
        "trajectory-tree--score",
        "trajectory-tree--backtrack",
        "trajectory-tree--branch",
        "trajectory-tree--note",
        "trajectory-tree--correction",
        "trajectory-tree--muted",
    }
    """
    | Class | Description |
    | :- | :- |
    | `trajectory-tree--episode` | An episode's task name. |
    | `trajectory-tree--passed` | A step or episode that succeeded. |
    | `trajectory-tree--failed` | A step or episode that failed. |
    | `trajectory-tree--score` | A partial score. |
    | `trajectory-tree--backtrack` | The mark of a step that was rolled back to. |
    | `trajectory-tree--branch` | The mark of a branch step. |
    | `trajectory-tree--note` | An experience note. |
    | `trajectory-tree--correction` | The mark of a step with corrections. |
    | `trajectory-tree--muted` | Secondary text. |
    """

    DEFAULT_CSS = """
    TrajectoryTree {
        & > .trajectory-tree--episode { text-style: bold; }
        & > .trajectory-tree--passed { color: $text-success; }
        & > .trajectory-tree--failed { color: $text-error; }
        & > .trajectory-tree--score { color: $text-warning; }
        & > .trajectory-tree--backtrack { color: $text-accent; text-style: bold; }
        & > .trajectory-tree--branch { color: $text-secondary; }
        & > .trajectory-tree--note { color: $text-primary; text-style: italic; }
        & > .trajectory-tree--correction { color: $text-warning; }
        & > .trajectory-tree--muted { color: $text-muted; }
    }
    """

    def __init__(self, db: sqlite_utils.Database, run_id: int | None = None, *,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Text(f"run {run_id}"), name=name, id=id, classes=classes)
        self.db = db
        self.run_id = run_id
        self.show_root = False
        self.guide_depth = 3
        self.auto_expand = False
        self.episode_nodes: dict[int, TreeNode[TreeItem]] = {}
        self.step_nodes: dict[int, TreeNode[TreeItem]] = {}
        self.loaded: set[int] = set()  # tree node ids whose children are in the tree
        self.episode_filter = browse.EpisodeFilter()  # what the shown episodes passed

    # -- labels -------------------------------------------------------------------

    def style_of(self, name: str) -> Style:
        return self.get_component_rich_style(f"trajectory-tree--{name}", partial=True)

    def outcome_text(self, success: int, done: int, score: float, status: str = "finished") -> Text:
        if success:
            return Text(f"✓ passed {score:.2f}", self.style_of("passed"))
        if done or status == "finished":
            return Text(f"✗ failed {score:.2f}", self.style_of("failed"))
        return Text(f"· {score:.2f}", self.style_of("score"))

    def episode_label(self, row: dict) -> Text:
        outcome = (
            Text("… running", self.style_of("score")) if row["status"] != "finished"
            else self.outcome_text(row["success"], 1, row["score"] or 0.0)
        )
        policy = f" {visible_line(row['policy'])}" if row["policy"] != "base" else ""
        return Text.assemble(
            (f"#{row['id']} ", self.style_of("muted")),
            (visible_line(row["task"]), self.style_of("episode")),
            (f"  r{row['rollout']}{policy}  ", self.style_of("muted")),
            outcome,
            (f"  {counted(row['steps'] or 0, 'step')}", self.style_of("muted")),
            *self.episode_marks(row),
        )

    def episode_marks(self, row: dict) -> list[tuple[str, Style]]:
        """★ corrections, ↪ branches and the best branch's score gain, where there are any."""
        marks: list[tuple[str, Style]] = []
        if row.get("n_corrections"):
            marks.append((f"  ★{row['n_corrections']}", self.style_of("correction")))
        if row.get("n_branches"):
            marks.append((f"  ↪{row['n_branches']}", self.style_of("branch")))
        if (row.get("gain") or 0.0) > 0.005:
            marks.append((f"  Δ+{row['gain']:.2f}", self.style_of("passed")))
        return marks

    def step_label(self, row: dict) -> Text:
        parts: list[tuple[str, Style] | Text] = []
        if row["branch_depth"]:
            parts.append(("↪ ", self.style_of("branch")))
        if row["backtrack_point"]:
            parts.append(("⟲ ", self.style_of("backtrack")))
        parts.append((f"step {row['depth']} ", Style(bold=True)))
        parts.append(self.outcome_text(row["success"], row["done"], row["score"] or 0.0, "running"))
        if row.get("n_corrections"):
            parts.append((f" ★{row['n_corrections']}", self.style_of("correction")))
        parts.append(("  " + first_telling_line(row["action"]), self.style_of("muted")))
        return Text.assemble(*parts)

    def note_label(self, row: dict) -> Text:
        text = visible_line(row["text"])
        text = text if len(text) <= 70 else text[:69] + "…"
        target = f" ⟲ step {row['rollback_depth']}" if row.get("rollback_depth") is not None else ""
        return Text.assemble(
            ("✎ note", self.style_of("note")),
            (f" ({visible_line(row['author'])}){target}: ", self.style_of("muted")),
            (text, self.style_of("note")),
        )

    # -- loading ------------------------------------------------------------------

    @shows_store_problems
    def show_episodes(self, rows: list[dict], *, more_offset: int | None = None) -> None:
        """Replace the tree's content by these episodes (collapsed, children not loaded)."""
        self.clear()
        self.episode_nodes.clear()
        self.step_nodes.clear()
        self.loaded.clear()
        for row in rows:
            self.add_episode(row)
        if more_offset is not None:
            self.root.add_leaf(Text("… more episodes (enter)", self.style_of("muted")),
                               TreeItem("more", -1, None, more_offset))

    def add_episode(self, row: dict) -> TreeNode[TreeItem]:
        node = self.root.add(self.episode_label(row), TreeItem("episode", row["id"], row["root_id"]))
        node.allow_expand = True
        self.episode_nodes[row["id"]] = node
        return node

    def add_step(self, parent: TreeNode[TreeItem], row: dict) -> TreeNode[TreeItem]:
        node = parent.add(self.step_label(row), TreeItem("step", row["id"], row["id"]))
        node.allow_expand = bool(row["n_children"] or row["n_notes"])
        self.step_nodes[row["id"]] = node
        return node

    def add_note(self, parent: TreeNode[TreeItem], row: dict) -> TreeNode[TreeItem]:
        return parent.add_leaf(self.note_label(row), TreeItem("note", row["id"], row["node_id"]))

    @shows_store_problems
    def load_children(self, node: TreeNode[TreeItem], offset: int = 0) -> None:
        """Fetch a page of this node's children from the store (once)."""
        item = node.data
        if item is None or item.node_id is None or (offset == 0 and node.id in self.loaded):
            return
        self.loaded.add(node.id)
        if offset == 0:
            for note_row in views.notes_on(self.db, item.node_id):
                self.add_note(node, note_row)
        rows = views.step_children(self.db, item.node_id, limit=views.CHILD_PAGE, offset=offset)
        for row in rows:
            if row["id"] not in self.step_nodes:
                self.add_step(node, row)
        if len(rows) == views.CHILD_PAGE:
            node.add_leaf(Text("… more branches (enter)", self.style_of("muted")),
                          TreeItem("more", item.id, item.node_id, offset + len(rows)))

    @shows_store_problems
    def load_more(self, more: TreeNode[TreeItem]) -> None:
        """Replace a `more` leaf by the next page it stands for."""
        item = more.data
        parent = more.parent
        if item is None or parent is None:
            return
        more.remove()
        if item.id == -1 and self.run_id is not None:
            rows = browse.episodes(self.db, self.run_id, self.episode_filter, offset=item.offset)
            for row in rows:
                if row["id"] not in self.episode_nodes:
                    self.add_episode(row)
            if len(rows) == views.EPISODE_PAGE:
                self.root.add_leaf(Text("… more episodes (enter)", self.style_of("muted")),
                                   TreeItem("more", -1, None, item.offset + len(rows)))
        else:
            self.load_children(parent, item.offset)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[TreeItem]) -> None:
        self.load_children(event.node)

    def on_tree_node_selected(self, event: Tree.NodeSelected[TreeItem]) -> None:
        if event.node.data is not None and event.node.data.kind == "more":
            event.stop()
            self.load_more(event.node)

    def expand_node(self, node: TreeNode[TreeItem]) -> None:
        """Load and expand at once (no round trip through the expanded message)."""
        self.load_children(node)
        node.expand()

    def action_expand_cursor(self) -> None:
        """Open the node and step into it, as in a file manager: right, right, right walks down."""
        node = self.cursor_node
        if node is None or not node.allow_expand:
            return
        self.expand_node(node)
        if node.children:
            self.move_cursor_now(node.children[0])

    def action_expand_all(self) -> None:
        """Everything under the cursor, loaded and open; pressed on a subtree that is all
        open already, it closes it."""
        node = self.cursor_node
        if node is None:
            return
        if self.all_expanded(node):
            node.collapse_all()
            return
        opened = self.expand_subtree(node)
        if opened >= EXPAND_ALL_LIMIT:
            self.notify(f"Opened the first {opened} steps; press shift+space on a deeper step for the rest.",
                        severity="warning", timeout=4)

    def all_expanded(self, node: TreeNode[TreeItem]) -> bool:
        pending = [node]
        while pending:
            current = pending.pop()
            if current.allow_expand and (not current.is_expanded or current.id not in self.loaded):
                return False
            pending.extend(current.children)
        return True

    @shows_store_problems
    def expand_subtree(self, node: TreeNode[TreeItem]) -> int:
        """Load and open `node` and everything under it (up to EXPAND_ALL_LIMIT steps)."""
        opened = 0
        pending = [node]
        while pending and opened < EXPAND_ALL_LIMIT:
            current = pending.pop(0)
            if not current.allow_expand:
                continue
            self.load_children(current)
            self.load_all_children(current)
            current.expand()
            opened += len(current.children)
            pending.extend(current.children)
        return opened

    def action_collapse_cursor(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent)

    @shows_store_problems
    def reveal(self, node_id: int, *, move: bool = True) -> TreeNode[TreeItem] | None:
        """Expand the path down to a step and (with `move`) put the cursor on it."""
        path = views.path_ids(self.db, node_id)
        if not path:
            return None
        position = views.node_position(self.db, node_id)
        episode_node = self.episode_nodes.get(position[0]) if position else None
        if episode_node is None:
            return None
        current = episode_node
        for step_id in path[1:]:
            self.expand_node(current)
            target = self.step_nodes.get(step_id)
            if target is None:  # beyond the first page of a wide fan-out
                self.load_all_children(current)
                target = self.step_nodes.get(step_id)
                if target is None:
                    return None
            current = target
        if move:
            self.move_cursor_now(current)
        return current

    def move_cursor_now(self, node: TreeNode[TreeItem]) -> None:
        """Move the cursor to a node that may have been added since the last refresh."""
        self._tree_lines  # noqa: B018 (rebuilds the line index, so the new node has its line)
        self.move_cursor(node)

    def load_all_children(self, node: TreeNode[TreeItem]) -> None:
        while True:
            more = [child for child in node.children if child.data is not None and child.data.kind == "more"]
            if not more:
                return
            self.load_more(more[0])

    def load_eagerly(self) -> int:
        """Build every node of every shown episode at once (the benchmark's baseline)."""
        count = 0
        pending = list(self.episode_nodes.values())
        while pending:
            node = pending.pop()
            self.load_children(node)
            self.load_all_children(node)
            count += 1
            pending.extend(child for child in node.children if child.allow_expand)
        return count

    # -- live updates -------------------------------------------------------------

    @shows_store_problems
    def refresh_episode(self, episode_id: int, row: dict | None = None) -> None:
        row = row if row is not None else browse.episode(self.db, episode_id)
        if row is None:
            return
        node = self.episode_nodes.get(episode_id)
        if node is None:
            if not self.episode_filter.narrows():  # a filtered list gains only what matches
                self.add_episode(row)
        else:
            node.set_label(self.episode_label(row))

    @shows_store_problems
    def add_live_nodes(self, node_ids: list[int], *, follow: bool = False, grow: bool = False) -> None:
        """Place steps that a running stage just stored; unloaded parts stay lazy.

        With `follow`, the path down to each new step is expanded so it is seen at once.
        With `grow`, a path the person can see grows: a new step under a shown leaf opens
        that leaf (a collapsed step with children stays as the person left it).
        """
        episodes: set[int] = set()
        frontier: set[int] = set()  # tree nodes placed by this call: leaves a moment ago
        for node_id in node_ids:
            row = views.step_row(self.db, node_id)
            if row is None or row["parent_id"] is None:
                continue
            episodes.add(row["episode_id"])
            if row["episode_id"] not in self.episode_nodes:
                self.refresh_episode(row["episode_id"])
            parent = self.parent_tree_node(row)
            if parent is not None:
                was_leaf = not parent.allow_expand or parent.id in frontier
                if grow and was_leaf and parent.id not in self.loaded and self.is_shown(parent):
                    parent.allow_expand = True
                    self.expand_node(parent)
                parent.allow_expand = True
                if parent.id in self.loaded and node_id not in self.step_nodes:
                    self.add_step(parent, row)
                if node_id in self.step_nodes:
                    frontier.add(self.step_nodes[node_id].id)
                parent_step = self.step_nodes.get(row["parent_id"])
                parent_row = views.step_row(self.db, row["parent_id"]) if parent_step is not None else None
                if parent_step is not None and parent_row is not None:
                    parent_step.set_label(self.step_label(parent_row))
            if follow:
                self.reveal(node_id, move=False)
        for episode_id in episodes:
            self.refresh_episode(episode_id)

    def is_shown(self, node: TreeNode[TreeItem]) -> bool:
        """Every ancestor is open: the node has a line in the tree."""
        ancestor = node.parent
        while ancestor is not None and ancestor is not self.root:
            if not ancestor.is_expanded:
                return False
            ancestor = ancestor.parent
        return True

    def parent_tree_node(self, row: dict) -> TreeNode[TreeItem] | None:
        parent = self.step_nodes.get(row["parent_id"])
        if parent is not None:
            return parent
        episode_node = self.episode_nodes.get(row["episode_id"])
        if episode_node is not None and episode_node.data is not None and episode_node.data.node_id == row["parent_id"]:
            return episode_node
        return None

    @shows_store_problems
    def refresh_step(self, node_id: int, *, reload_children: bool = False) -> None:
        """Relabel one step (after a branch or a new note); optionally reload its children."""
        node = self.step_nodes.get(node_id)
        row = views.step_row(self.db, node_id)
        if node is None or row is None:
            return
        node.set_label(self.step_label(row))
        node.allow_expand = bool(row["n_children"] or row["n_notes"])
        if reload_children and node.id in self.loaded:
            self.forget_descendants(node)
            node.remove_children()
            if node.is_expanded:
                self.load_children(node)

    def forget_descendants(self, node: TreeNode[TreeItem]) -> None:
        for child in node.children:
            self.forget_descendants(child)
            if child.data is not None and child.data.kind == "step":
                self.step_nodes.pop(child.data.id, None)
        self.loaded.discard(node.id)
